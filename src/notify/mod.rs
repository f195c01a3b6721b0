//! Outgoing messages: mail over SMTP (or to an outbox directory when no SMTP server is
//! configured) and the templates they are rendered from.

pub mod mail;
pub mod templates;

pub use mail::{Mail, Mailer};
