//! Mail delivery: SMTP through lettre when `TESSERA_SMTP_URL` is set, otherwise one RFC 5322
//! `.eml` file per message in `DATA_DIR/outbox/`. Logs name the template, never the
//! recipient or the content.

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;

use super::templates::Rendered;

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub rendered: Rendered,
    /// Template name, for logs.
    pub kind: &'static str,
    /// The app's own sender address, instead of the server's `TESSERA_MAIL_FROM`.
    pub from: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("recipient is not a mail address")]
    BadAddress,
    #[error("mail could not be built: {0}")]
    Build(String),
    #[error("mail delivery failed: {0}")]
    Send(String),
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { .. } => f.write_str("Mailer::Smtp"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
        }
    }
}

impl Mailer {
    /// SMTP when a URL is given (`smtp://host:port`, `smtps://user:pass@host`), else the outbox.
    pub fn new(
        smtp_url: Option<&SecretString>,
        from: &str,
        outbox: PathBuf,
    ) -> Result<Self, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| MailError::Build("mail_from is not a mailbox".into()))?;
        match smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|e| MailError::Build(e.to_string()))?
                    .timeout(Some(std::time::Duration::from_secs(15)))
                    .build();
                Ok(Mailer::Smtp { transport, from })
            }
            None => Ok(Mailer::Outbox { dir: outbox, from }),
        }
    }

    fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
        // A bare address only: a handle like `"a@x" <b@y>` must not send the code to b@y.
        let to = Mailbox::new(
            None,
            mail.to
                .parse::<lettre::Address>()
                .map_err(|_| MailError::BadAddress)?,
        );
        let from = match &mail.from {
            Some(address) => Mailbox::new(
                from.name.clone(),
                address
                    .parse::<lettre::Address>()
                    .map_err(|e| MailError::Build(e.to_string()))?,
            ),
            None => from.clone(),
        };
        Message::builder()
            .message_id(None)
            .from(from)
            .to(to)
            .subject(mail.rendered.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.rendered.text.clone(),
                mail.rendered.html.clone(),
            ))
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends one message; returns once the SMTP server accepted it or the file is written.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        match self {
            Mailer::Smtp { transport, from } => {
                let msg = Self::build(from, mail)?;
                transport
                    .send(msg)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                tracing::info!(kind = mail.kind, "mail accepted by the SMTP server");
                Ok(())
            }
            Mailer::Outbox { dir, from } => {
                let msg = Self::build(from, mail)?;
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                let name = format!("{}.eml", uuid::Uuid::now_v7().simple());
                let path = dir.join(&name);
                tokio::fs::write(&path, msg.formatted())
                    .await
                    .map_err(|e| MailError::Send(e.to_string()))?;
                tracing::info!(kind = mail.kind, file = %name, "mail written to the outbox");
                Ok(())
            }
        }
    }
}
