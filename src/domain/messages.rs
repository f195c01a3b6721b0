//! Rendering and sending the messages of the flows: the app's template for the recipient's
//! locale, else the app's English one, else the built-in English default (spec §6.1; the
//! reference crashed on a missing locale, Tessera falls back).

use super::apps::App;
use super::{Core, Error, Found, Result};
use crate::notify::templates::{self, TEMPLATE_NAMES, Template, Vars};
use crate::notify::{Mail, mail::MailError};
use crate::store::TemplateRow;

impl Core {
    /// The template `name` for `app` in `locale`, with fallbacks.
    pub async fn template(&self, app: &App, name: &str, locale: &str) -> Result<Template> {
        for loc in [locale, "EN"] {
            if let Some(t) = self.store.template_get(app.id(), name, loc).await.found()? {
                return Ok(Template {
                    subject: t.subject,
                    html: t.html,
                    link_text: t.link_text,
                });
            }
        }
        templates::default_template(name)
            .ok_or_else(|| Error::Internal(format!("no template {name}")))
    }

    /// Stores an app's own template (name of spec §6.1, one of the app's locales).
    pub async fn put_template(&self, t: &TemplateRow) -> Result<()> {
        let app = self.app(&t.app_id).await?;
        if !TEMPLATE_NAMES.contains(&t.name.as_str()) || !app.settings.locales.contains(&t.locale) {
            return Err(Error::InvalidData);
        }
        if t.subject.len() > 998 || t.html.len() > 256 * 1024 || t.subject.contains(['\r', '\n']) {
            return Err(Error::InvalidData);
        }
        self.store.template_put(t).await?;
        Ok(())
    }

    /// Counts one mail carrying a code to the handle with blind index `handle_idx`, against
    /// the per-recipient limit (signup, reset and invite mails share it): 602 past it, before
    /// anything is stored or sent.
    pub async fn spend_mail_budget(&self, app_id: &str, handle_idx: &[u8], now: i64) -> Result<()> {
        let key = format!("mail:{app_id}:{}", hex::encode(handle_idx));
        self.spend_budget(&key, self.policy.mail_send_limit, now, Error::InvalidData)
            .await
    }

    /// Renders template `name` in `locale` and mails it to `to`.
    pub async fn send_mail(
        &self,
        app: &App,
        name: &'static str,
        locale: &str,
        to: &str,
        code: &str,
        link: &str,
    ) -> Result<()> {
        let template = self.template(app, name, locale).await?;
        let rendered = templates::render(
            &template,
            &Vars {
                handle: to,
                code,
                app_name: &app.row.name,
                link,
            },
        );
        self.mailer
            .send(&Mail {
                to: to.to_owned(),
                rendered,
                kind: name,
                from: Some(app.settings.email_extension_sender_email.clone())
                    .filter(|f| !f.is_empty()),
            })
            .await
            .map_err(|e| match e {
                MailError::BadAddress => Error::InvalidData,
                other => {
                    tracing::error!(kind = name, error = %other, "mail delivery failed");
                    Error::Internal("mail delivery failed".into())
                }
            })?;
        if !code.is_empty() {
            self.metrics.code_sent("mail", name);
        }
        Ok(())
    }

    /// Renders the `sms` template in `locale` and sends it to `phone` (E.164) through the
    /// app's provider account, or to the outbox when the app has none.
    pub async fn send_sms(
        &self,
        app: &App,
        locale: &str,
        phone: &str,
        handle: &str,
        code: &str,
        kind: &'static str,
    ) -> Result<()> {
        let template = self.template(app, "sms", locale).await?;
        let body = templates::render(
            &template,
            &Vars {
                handle,
                code,
                app_name: &app.row.name,
                link: "",
            },
        )
        .text;
        let creds = self.app_secrets(app)?.sms_credentials();
        self.sms
            .send(
                creds.as_ref(),
                &crate::notify::Sms {
                    to: phone.to_owned(),
                    body,
                    kind,
                },
            )
            .await
            .map_err(|e| {
                tracing::error!(kind, error = %e, "SMS delivery failed");
                Error::Internal("SMS delivery failed".into())
            })?;
        self.metrics.code_sent("sms", kind);
        Ok(())
    }

    /// Sends a message whose failure must not undo what was already done (welcome mails).
    pub async fn send_mail_best_effort(
        &self,
        app: &App,
        name: &'static str,
        locale: &str,
        to: &str,
    ) {
        if let Err(e) = self.send_mail(app, name, locale, to, "", "").await {
            tracing::warn!(kind = name, error = %e, "optional mail not sent");
        }
    }

    /// Renders a page template (clickThrough) for a browser.
    pub async fn render_page(
        &self,
        app: &App,
        name: &str,
        locale: &str,
        handle: &str,
        code: &str,
    ) -> Result<String> {
        let t = self.template(app, name, locale).await?;
        Ok(templates::render(
            &t,
            &Vars {
                handle,
                code,
                app_name: &app.row.name,
                link: "",
            },
        )
        .html)
    }
}
