//! Outgoing messages: mail over SMTP (or to an outbox directory when no SMTP server is
//! configured), SMS over a Twilio-compatible HTTP API (or the same outbox), the templates
//! they are rendered from, and the QR images of authenticator enrolment.

pub mod mail;
pub mod qr;
pub mod sms;
pub mod templates;

pub use mail::{Mail, Mailer};
pub use sms::{Sms, SmsCredentials, SmsGateway};
