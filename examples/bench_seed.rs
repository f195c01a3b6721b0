//! Seeds an app for the benchmarks straight through the store, in bulk: USERS users
//! `user<i>@bench.local` (all with the password "correct-horse", wire form MD5, hashed once
//! with the configured Argon2id cost) and ANON anonymous users `ANON_bench<i>`. Uses the
//! server's own settings (TESSERA_* environment) and prints the app as JSON.
//!
//! cargo run --release --example bench_seed -- USERS ANON

use secrecy::SecretString;
use serde_json::Map;
use tessera::config::Settings;
use tessera::crypto::keys::RsaBits;
use tessera::domain::Handle;
use tessera::domain::apps::NewApp;
use tessera::domain::settings::{AppSettings, SignupFlow};
use tessera::domain::users::NewUser;

/// MD5 of "correct-horse": the wire form clients send.
pub const WIRE_PASSWORD: &str = "2eb62d171ba8491db496081a8b24738a";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let anon: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let settings = Settings::load(None)?;
    let core =
        tessera::server::build_core(&settings, settings.public_url_or(&settings.listen)).await?;
    let now = tessera::http::extract::now_ms();
    let created = core
        .create_app(
            NewApp {
                name: "Bench".into(),
                settings: AppSettings {
                    signup_flow: SignupFlow::None,
                    anonymous_login_enabled: true,
                    ..AppSettings::default()
                },
                key_bits: RsaBits::B2048,
            },
            now,
        )
        .await?;
    let hash = core
        .hasher
        .hash(&SecretString::from(WIRE_PASSWORD.to_owned()))
        .await?;
    let meta = Map::new();
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let total = users + anon;
    for i in 0..total {
        let (text, password) = if i < users {
            (format!("user{i}@bench.local"), Some(hash.clone()))
        } else {
            (format!("ANON_bench{}", i - users), None)
        };
        let handle = Handle::parse(&text)?;
        batch.push(core.new_user_row(
            &NewUser {
                app_id: &created.app_id,
                handle: &handle,
                password_hash: password,
                locale: "EN",
                metadata: &meta,
                login_provider: "",
            },
            now,
        )?);
        if batch.len() == 1000 || i + 1 == total {
            core.store.users_insert(&batch).await?;
            batch.clear();
        }
    }
    eprintln!(
        "seeded {users} users and {anon} anonymous users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{}", serde_json::to_string(&created)?);
    Ok(())
}
