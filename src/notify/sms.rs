//! SMS delivery: a Twilio-compatible HTTP API (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form fields `To`, `From`, `Body`, basic auth) with the app's own credentials, or, for an app
//! without credentials, one `.sms` text file per message in `DATA_DIR/outbox/`. Logs never
//! name the number or the text.

use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

/// One text message.
#[derive(Debug, Clone)]
pub struct Sms {
    /// E.164.
    pub to: String,
    pub body: String,
    /// What the message is for, for logs.
    pub kind: &'static str,
}

/// An app's provider account (stored sealed with the app's secrets).
#[derive(Clone)]
pub struct SmsCredentials {
    pub account_sid: String,
    pub auth_token: SecretString,
    /// The sending number, E.164.
    pub from: String,
}

impl std::fmt::Debug for SmsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsCredentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"redacted")
            .field("from", &self.from)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("SMS provider answered HTTP {0}")]
    Rejected(u16),
    #[error("SMS provider unreachable: {0}")]
    Unreachable(String),
    #[error("SMS could not be written to the outbox: {0}")]
    Outbox(String),
}

/// Sends SMS for every app.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    base_url: String,
    client: reqwest::Client,
    outbox: PathBuf,
}

impl SmsGateway {
    /// `base_url` is the provider's API root (`https://api.twilio.com` or a compatible one).
    pub fn new(base_url: &str, outbox: PathBuf) -> Result<Self, SmsError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SmsError::Unreachable(e.to_string()))?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
            outbox,
        })
    }

    /// Sends `sms` through the app's provider account, or to the outbox when it has none.
    /// Returns once the provider accepted the message (2xx) or the file is written.
    pub async fn send(&self, creds: Option<&SmsCredentials>, sms: &Sms) -> Result<(), SmsError> {
        match creds {
            Some(c) => self.send_http(c, sms).await,
            None => self.write_outbox(sms).await,
        }
    }

    async fn send_http(&self, c: &SmsCredentials, sms: &Sms) -> Result<(), SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base_url, c.account_sid
        );
        let res = self
            .client
            .post(url)
            .basic_auth(&c.account_sid, Some(c.auth_token.expose_secret()))
            .form(&[
                ("To", sms.to.as_str()),
                ("From", c.from.as_str()),
                ("Body", sms.body.as_str()),
            ])
            .send()
            .await
            .map_err(|e| SmsError::Unreachable(e.without_url().to_string()))?;
        let status = res.status();
        if !status.is_success() {
            return Err(SmsError::Rejected(status.as_u16()));
        }
        tracing::info!(kind = sms.kind, "SMS accepted by the provider");
        Ok(())
    }

    async fn write_outbox(&self, sms: &Sms) -> Result<(), SmsError> {
        tokio::fs::create_dir_all(&self.outbox)
            .await
            .map_err(|e| SmsError::Outbox(e.to_string()))?;
        let name = format!("{}.sms", uuid::Uuid::now_v7().simple());
        let text = format!("To: {}\nBody: {}\n", sms.to, sms.body.replace('\n', " "));
        tokio::fs::write(self.outbox.join(&name), text)
            .await
            .map_err(|e| SmsError::Outbox(e.to_string()))?;
        tracing::info!(kind = sms.kind, file = %name, "SMS written to the outbox");
        Ok(())
    }
}
