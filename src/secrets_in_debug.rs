//! Secrets never reach `Debug` output (DESIGN.md §3.7): every input that carries a password,
//! code, token or provider credential is formatted and searched (the configuration's own test
//! is in `config.rs`).

use secrecy::SecretString;

use crate::domain::WirePassword;
use crate::domain::auth::Presented;
use crate::domain::invites::RegisterInput;
use crate::domain::login::LoginInput;
use crate::domain::profile::DeleteProof;
use crate::domain::settings::AppSecrets;
use crate::domain::signup::SignupInput;
use crate::notify::SmsCredentials;

const SECRET: &str = "s3cr3t-value-that-must-not-print";

fn assert_hidden(what: &str, text: String) {
    assert!(!text.contains(SECRET), "{what} prints a secret: {text}");
    assert!(!text.contains("c3VwZXI"), "{what} prints a key: {text}");
}

#[test]
fn inputs_that_carry_secrets_hide_them() {
    let secret = || SecretString::from(SECRET.to_owned());
    assert_hidden(
        "LoginInput",
        format!(
            "{:?}",
            LoginInput {
                handle: "a@x.de".into(),
                password: secret()
            }
        ),
    );
    assert_hidden(
        "SignupInput",
        format!(
            "{:?}",
            SignupInput {
                handle: "a@x.de".into(),
                password: secret(),
                metadata: None,
                locale: None
            }
        ),
    );
    assert_hidden(
        "RegisterInput",
        format!(
            "{:?}",
            RegisterInput {
                handle: "a@x.de".into(),
                password: secret(),
                code: "123456".into(),
                metadata: None,
                locale: None,
            }
        ),
    );
    assert_hidden(
        "DeleteProof",
        format!(
            "{:?}",
            DeleteProof::Password {
                handle: "a@x.de".into(),
                password: secret()
            }
        ),
    );
    assert_hidden("WirePassword", format!("{:?}", WirePassword(secret())));
    assert_hidden(
        "Presented",
        format!(
            "{:?}",
            Presented {
                server_secret: Some(SECRET),
                app_token: Some(SECRET),
                access_token: Some(SECRET),
                query_app_token: Some(SECRET),
            }
        ),
    );
    let mut secrets = AppSecrets::default();
    secrets.set("TWILIOToken", SECRET).expect("set");
    assert_hidden("AppSecrets", format!("{secrets:?}"));
    assert_hidden(
        "SmsCredentials",
        format!(
            "{:?}",
            SmsCredentials {
                account_sid: "AC1".into(),
                auth_token: secret(),
                from: "+1".into()
            }
        ),
    );
}
