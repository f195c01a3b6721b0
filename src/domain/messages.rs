//! Rendering and sending the messages of the flows, in the recipient's locale.

use super::apps::App;
use super::{Core, Error, Result};
use crate::notify::templates::{self, Vars};
use crate::notify::{Mail, mail::MailError};

impl Core {
    /// Renders template `name` for `app` (falling back to the English default) and mails it.
    pub async fn send_mail(
        &self,
        app: &App,
        name: &'static str,
        _locale: &str,
        to: &str,
        code: &str,
        link: &str,
    ) -> Result<()> {
        let template = templates::default_template(name)
            .ok_or_else(|| Error::Internal(format!("no template {name}")))?;
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
            })
            .await
            .map_err(|e| match e {
                MailError::BadAddress => Error::InvalidData,
                other => {
                    tracing::error!(kind = name, error = %other, "mail delivery failed");
                    Error::Internal("mail delivery failed".into())
                }
            })
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
}
