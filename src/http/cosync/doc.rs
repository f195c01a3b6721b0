//! The shapes of the CosyncJWT bodies, for the OpenAPI document only: every route reads its
//! fields through `CosyncRequest` (JSON, form-encoded or Content-Type-less form bodies alike).
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The error answer of every CosyncJWT route: HTTP 400 (503 in an outage) with a protocol code.
#[derive(Deserialize, ToSchema)]
pub struct CosyncError {
    /// 400-414 or 600-608 (spec §1.5); 500 for an internal error.
    pub code: u16,
    pub message: String,
}

/// `{"jwt", "access-token"}`, and `signed-user-token` where the spec adds it.
#[derive(Deserialize, ToSchema)]
pub struct Tokens {
    /// The RS256 user JWT (at most 2048 characters).
    pub jwt: String,
    #[serde(rename = "access-token")]
    pub access_token: String,
    #[serde(rename = "signed-user-token")]
    pub signed_user_token: Option<String>,
}

/// `login` with a second factor to show.
#[derive(Deserialize, ToSchema)]
pub struct LoginToken {
    #[serde(rename = "login-token")]
    pub login_token: String,
}

macro_rules! body {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name { $($(#[$fdoc])* pub $field: $ty),* }
    };
}

body!(LoginBody {
    handle: String,
    /// Lower-case hex MD5 of the password (32 characters).
    password: String,
});
body!(AnonymousBody {
    /// Contains `ANON_`; kept byte-exact.
    handle: String,
    locale: Option<String>,
});
body!(SignupBody {
    handle: String,
    /// Lower-case hex MD5 of the password (32 characters).
    password: String,
    /// A JSON object, as a string.
    meta_data: Option<String>,
    locale: Option<String>,
});
body!(CompleteSignupBody {
    handle: String,
    /// Six digits, as a string or a number.
    code: String,
});
body!(InviteBody {
    handle: String,
    sender_user_id: String,
    meta_data: Option<String>,
});
body!(RegisterBody {
    handle: String,
    password: String,
    code: String,
    meta_data: Option<String>,
    locale: Option<String>,
});
body!(HandleBody { handle: String });
body!(ResetPasswordBody {
    handle: String,
    password: String,
    code: String,
});
body!(ChangePasswordBody {
    password: String,
    new_password: String,
});
body!(UserNameBody { user_name: String });
body!(LocaleBody { locale: String });
body!(MetadataBody {
    /// A JSON object, as a string.
    meta_data: String,
});
body!(DeleteAccountBody {
    handle: Option<String>,
    password: Option<String>,
    /// A social id-token (refused: social login is not offered).
    token: Option<String>,
});
body!(LoginCompleteBody {
    login_token: String,
    code: String,
});
body!(PhoneBody {
    /// E.164, or national in the app's `phoneDefaultRegion`.
    phone: String,
});
body!(CodeBody { code: String });
body!(TwoFactorBody {
    /// `true`/`"true"` enables, anything else disables.
    two_factor: String,
    /// A current code from the authenticator, confirming possession.
    code: Option<String>,
});

/// The e-mail link's query.
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ConfirmQuery {
    pub app_token: String,
    pub handle: String,
    pub code: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UserNameQuery {
    pub user_name: String,
}
