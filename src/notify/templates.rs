//! Message templates (spec §6.1): eight names, per locale, with `%HANDLE%`, `%CODE%`,
//! `%APP_NAME%` and `%LINK%` placeholders. Values are HTML-escaped before they are placed in
//! HTML and never interpreted as markup.

/// The template names of spec §6.1.
pub const TEMPLATE_NAMES: &[&str] = &[
    "signUp",
    "signUpLink",
    "clickThrough",
    "resetPassword",
    "invite",
    "qrCode",
    "sms",
    "signUpSuccess",
];

/// A template as stored: subject and HTML body with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub html: String,
    /// Text of the anchor that `%LINK%` becomes (signUpLink only).
    pub link_text: String,
}

/// The built-in English template for `name`.
pub fn default_template(name: &str) -> Option<Template> {
    let (subject, html) = match name {
        "signUp" => (
            "%APP_NAME%: your sign-up code",
            "<p>Welcome to %APP_NAME%.</p><p>Your code to finish signing up as %HANDLE% is <b>%CODE%</b>.</p><p>It is valid for 48 hours. If you did not sign up, ignore this message.</p>",
        ),
        "signUpLink" => (
            "%APP_NAME%: confirm your e-mail address",
            "<p>Welcome to %APP_NAME%.</p><p>To finish signing up as %HANDLE%, open this link: %LINK%</p><p>If you did not sign up, ignore this message.</p>",
        ),
        "clickThrough" => (
            "%APP_NAME%",
            "<p>Thank you. %HANDLE% is now registered with %APP_NAME%; you can log in from the app.</p>",
        ),
        "resetPassword" => (
            "%APP_NAME%: password reset code",
            "<p>Your code to reset the password of %HANDLE% in %APP_NAME% is <b>%CODE%</b>.</p><p>If you did not ask for it, ignore this message; your password is unchanged.</p>",
        ),
        "invite" => (
            "You are invited to %APP_NAME%",
            "<p>You have been invited to %APP_NAME% as %HANDLE%.</p><p>Your invitation code is <b>%CODE%</b>.</p>",
        ),
        "qrCode" => (
            "%APP_NAME%: authenticator set-up",
            "<p>Two-factor authentication with an authenticator app is now on for %HANDLE% in %APP_NAME%.</p>",
        ),
        "sms" => ("%APP_NAME%", "%APP_NAME% code: %CODE%"),
        "signUpSuccess" => (
            "Welcome to %APP_NAME%",
            "<p>%HANDLE% is now registered with %APP_NAME%.</p>",
        ),
        _ => return None,
    };
    Some(Template {
        subject: subject.into(),
        html: html.into(),
        link_text: "LINK".into(),
    })
}

/// Values substituted into a template.
#[derive(Debug, Default, Clone)]
pub struct Vars<'a> {
    pub handle: &'a str,
    pub code: &'a str,
    pub app_name: &'a str,
    pub link: &'a str,
}

/// A rendered message: subject, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn substitute(template: &str, vars: &Vars<'_>, link: &str, escape: bool) -> String {
    let e = |s: &str| if escape { escape_html(s) } else { s.to_owned() };
    // One pass, so a value that itself contains a placeholder is never expanded.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (value, len) = if after.starts_with("%HANDLE%") {
            (e(vars.handle), 8)
        } else if after.starts_with("%CODE%") {
            (e(vars.code), 6)
        } else if after.starts_with("%APP_NAME%") {
            (e(vars.app_name), 10)
        } else if after.starts_with("%LINK%") {
            (link.to_owned(), 6)
        } else {
            ("%".to_owned(), 1)
        };
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Turns simple HTML into readable text for the plain part of a mail.
fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let t = tag.trim_start_matches('/').to_ascii_lowercase();
                if (t.starts_with('p') || t.starts_with("br") || t.starts_with("div"))
                    && !out.ends_with('\n')
                    && !out.is_empty()
                {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    decode_entities(&out).trim().to_owned()
}

/// Decodes HTML character references in one pass (so `&amp;lt;` stays `&lt;`): the named
/// ones templates use, and numeric ones; anything else is kept as written.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{A0}'),
                _ => {
                    let n = if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        name.strip_prefix('#').and_then(|d| d.parse().ok())
                    };
                    n.and_then(char::from_u32).filter(|c| !c.is_control())
                }
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Renders `template`: placeholders in the subject and text are plain, in the HTML escaped.
pub fn render(template: &Template, vars: &Vars<'_>) -> Rendered {
    let anchor = if vars.link.is_empty() {
        String::new()
    } else {
        format!(
            "<a href=\"{}\">{}</a>",
            escape_html(vars.link),
            escape_html(&template.link_text)
        )
    };
    let html = substitute(&template.html, vars, &anchor, true);
    let text_source = substitute(&template.html, vars, &escape_html(vars.link), true);
    Rendered {
        subject: substitute(&template.subject, vars, vars.link, false).replace(['\r', '\n'], " "),
        text: html_to_text(&text_source),
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_part_decodes_entities_once() {
        assert_eq!(
            html_to_text("code&nbsp;: <b>1</b> &amp; &amp;lt; &#233;&#xE9; &bogus; &"),
            "code\u{A0}: 1 & &lt; éé &bogus; &"
        );
    }

    #[test]
    fn every_name_has_a_default() {
        for name in TEMPLATE_NAMES {
            assert!(default_template(name).is_some(), "{name}");
        }
        assert!(default_template("nope").is_none());
    }

    #[test]
    fn values_are_escaped_in_html_and_never_expanded_twice() {
        let t = default_template("signUp").unwrap();
        let r = render(
            &t,
            &Vars {
                handle: "<script>alert(1)</script>%CODE%@x.de",
                code: "123456",
                app_name: "A&B",
                link: "",
            },
        );
        assert!(
            r.html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;%CODE%@x.de")
        );
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("<b>123456</b>"));
        assert_eq!(r.subject, "A&B: your sign-up code");
        assert!(r.text.contains(
            "Your code to finish signing up as <script>alert(1)</script>%CODE%@x.de is 123456."
        ));
    }

    #[test]
    fn link_becomes_an_escaped_anchor() {
        let t = default_template("signUpLink").unwrap();
        let r = render(
            &t,
            &Vars {
                handle: "a@x.de",
                code: "1",
                app_name: "App",
                link: "http://h/x?a=1&b=\"2\"",
            },
        );
        assert!(
            r.html
                .contains("<a href=\"http://h/x?a=1&amp;b=&quot;2&quot;\">LINK</a>")
        );
        assert!(r.text.contains("http://h/x?a=1&b=\"2\""));
    }
}
