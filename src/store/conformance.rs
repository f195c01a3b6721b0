//! One list of behaviour checks for every [`Store`] method, run unchanged against SQLite (a
//! temporary file) and PostgreSQL (a fresh schema per check in `TEST_DATABASE_URL`'s database;
//! skipped with a message when unset, a failure when `CI` is set without it).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::sql::{PoolOptions, SqlStore};
use super::*;

type S = Arc<dyn Store>;

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn app_row(id: &str, created_at: i64) -> AppRow {
    AppRow {
        id: id.into(),
        name: format!("app {id}"),
        status: "active".into(),
        settings: r#"{"signupFlow":"code"}"#.into(),
        secrets: None,
        active_kid: format!("kid-{id}"),
        created_at,
        updated_at: created_at,
    }
}

fn key_row(app_id: &str) -> AppKeyRow {
    AppKeyRow {
        kid: format!("kid-{app_id}"),
        app_id: app_id.into(),
        sealed_private: vec![1, 2, 3, 0, 255],
        public_der: vec![4, 5, 6],
        status: "active".into(),
        created_at: 1,
    }
}

/// Creates an app (with its key) for a check; every check uses its own apps.
async fn new_app(store: &S) -> String {
    let app = id();
    store
        .app_create(&app_row(&app, 1_000), &key_row(&app))
        .await
        .unwrap();
    app
}

fn user_row(app_id: &str, handle: &[u8]) -> UserRow {
    UserRow {
        id: id(),
        app_id: app_id.into(),
        handle_idx: handle.to_vec(),
        handle_enc: [b"enc:", handle].concat(),
        user_name_idx: None,
        user_name_enc: None,
        password_hash: Some("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".into()),
        status: "active".into(),
        locale: "EN".into(),
        metadata_enc: None,
        epoch: 0,
        login_provider: String::new(),
        two_factor_phone: false,
        two_factor_google: false,
        totp_enc: None,
        totp_last_step: 0,
        phone_enc: None,
        phone_idx: None,
        phone_verified: false,
        last_login: None,
        created_at: 5_000,
        updated_at: 5_000,
        anonymous: false,
    }
}

fn signup_row(app_id: &str, handle: &[u8], code: &[u8]) -> SignupRow {
    SignupRow {
        id: id(),
        app_id: app_id.into(),
        handle_idx: handle.to_vec(),
        handle_enc: [b"enc:", handle].concat(),
        password_hash: "hash".into(),
        metadata_enc: Some(vec![9, 9]),
        locale: "EN".into(),
        code_hash: code.to_vec(),
        expires_at: 99_000,
        created_at: 1_000,
        updated_at: 1_000,
        contested: false,
    }
}

/// Every column of a user row, for round-trip comparisons.
fn user_tuple(u: &UserRow) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {:?} {:?} {} {} {:?} {} {} {} {} {:?} {} {:?} {:?} {} {:?} {} {}",
        u.id,
        u.app_id,
        u.handle_idx,
        u.handle_enc,
        u.user_name_idx,
        u.user_name_enc,
        u.password_hash,
        u.status,
        u.locale,
        u.metadata_enc,
        u.epoch,
        u.login_provider,
        u.two_factor_phone,
        u.two_factor_google,
        u.totp_enc,
        u.totp_last_step,
        u.phone_enc,
        u.phone_idx,
        u.phone_verified,
        u.last_login,
        u.created_at,
        u.updated_at
    )
}

/// Asserts `Conflict` naming the same constraint on every backend.
fn assert_conflict<T>(r: StoreResult<T>, constraint: &str) {
    match r {
        Err(StoreError::Conflict(name)) => assert_eq!(name, constraint),
        Err(e) => panic!("{constraint}: expected Conflict, got {e:?}"),
        Ok(_) => panic!("{constraint}: expected Conflict, got Ok"),
    }
}

fn assert_not_found<T>(r: StoreResult<T>, what: &str) {
    match r {
        Err(StoreError::NotFound) => {}
        Err(e) => panic!("{what}: expected NotFound, got {e:?}"),
        Ok(_) => panic!("{what}: expected NotFound, got Ok"),
    }
}

async fn check_ping(store: S) {
    store.ping().await.unwrap();
}

async fn check_server_key_first_writer_wins(store: S) {
    let (kid, sealed) = store
        .server_key_get_or_insert("p", "k1", &[1, 2], 10)
        .await
        .unwrap();
    assert_eq!((kid.as_str(), sealed.as_slice()), ("k1", &[1u8, 2][..]));
    let (kid, sealed) = store
        .server_key_get_or_insert("p", "k2", &[3], 11)
        .await
        .unwrap();
    assert_eq!((kid.as_str(), sealed.as_slice()), ("k1", &[1u8, 2][..]));
    let (kid, _) = store
        .server_key_get_or_insert("other", "k3", &[3], 11)
        .await
        .unwrap();
    assert_eq!(kid, "k3");
}

async fn check_apps(store: S) {
    let a = id();
    let b = id();
    store
        .app_create(&app_row(&b, 2_000), &key_row(&b))
        .await
        .unwrap();
    store
        .app_create(&app_row(&a, 1_000), &key_row(&a))
        .await
        .unwrap();
    assert_conflict(
        store.app_create(&app_row(&a, 3), &key_row(&id())).await,
        "apps_pkey",
    );
    let got = store.app_get(&a).await.unwrap();
    assert_eq!(
        (got.name.as_str(), got.active_kid.as_str(), got.created_at),
        (
            format!("app {a}").as_str(),
            format!("kid-{a}").as_str(),
            1_000
        )
    );
    assert_eq!(got.secrets, None);
    let ids: Vec<String> = store
        .app_list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![a.clone(), b.clone()], "ordered by creation");

    let mut changed = got.clone();
    changed.name = "renamed".into();
    changed.status = "suspended".into();
    changed.settings = "{}".into();
    changed.secrets = Some(vec![0, 1, 2]);
    changed.active_kid = "kid-next".into();
    changed.updated_at = 9_000;
    store.app_update(&changed, got.updated_at).await.unwrap();
    let got = store.app_get(&a).await.unwrap();
    assert_eq!(
        (
            got.name.as_str(),
            got.status.as_str(),
            got.settings.as_str(),
            got.secrets.as_deref(),
            got.active_kid.as_str(),
            got.created_at,
            got.updated_at
        ),
        (
            "renamed",
            "suspended",
            "{}",
            Some(&[0u8, 1, 2][..]),
            format!("kid-{a}").as_str(),
            1_000,
            9_000
        ),
        "the active key is app_key_rotate's alone"
    );
    // A writer that read the app before that change is refused, and writes nothing.
    let mut stale = changed.clone();
    stale.name = "stale".into();
    stale.updated_at = 9_500;
    assert!(matches!(
        store.app_update(&stale, 1_000).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.app_get(&a).await.unwrap().name, "renamed");
    // Without secrets, the stored secrets stay.
    let mut renamed = changed.clone();
    renamed.name = "renamed again".into();
    renamed.secrets = None;
    renamed.updated_at = 9_001;
    store.app_update(&renamed, 9_000).await.unwrap();
    let got = store.app_get(&a).await.unwrap();
    assert_eq!(
        (got.name.as_str(), got.secrets.as_deref()),
        ("renamed again", Some(&[0u8, 1, 2][..]))
    );
    assert_not_found(store.app_get("no-such-app").await, "app_get");
    assert_not_found(
        store.app_update(&app_row("no-such-app", 1), 1).await,
        "app_update",
    );

    let keys = store.app_keys(&a).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (
            keys[0].kid.as_str(),
            keys[0].sealed_private.as_slice(),
            keys[0].public_der.as_slice(),
            keys[0].status.as_str()
        ),
        (
            format!("kid-{a}").as_str(),
            &[1u8, 2, 3, 0, 255][..],
            &[4u8, 5, 6][..],
            "active"
        )
    );
    assert!(store.app_keys("no-such-app").await.unwrap().is_empty());
}

async fn check_users(store: S) {
    let app = new_app(&store).await;
    let other_app = new_app(&store).await;
    let u = user_row(&app, b"h1");
    store.user_create(&u).await.unwrap();
    assert_eq!(
        user_tuple(&store.user_by_handle(&app, b"h1").await.unwrap()),
        user_tuple(&u)
    );
    assert_eq!(
        user_tuple(&store.user_get(&app, &u.id).await.unwrap()),
        user_tuple(&u)
    );
    assert_not_found(store.user_by_handle(&app, b"h2").await, "by_handle");
    assert_not_found(store.user_by_handle(&other_app, b"h1").await, "other app");
    assert_not_found(store.user_get(&other_app, &u.id).await, "user_get");
    assert_not_found(store.user_by_name(&app, b"n1").await, "by_name");

    // Each update writes its own columns and no others.
    assert!(
        store
            .user_set_user_name(&app, &u.id, b"n1", b"enc:n1", 6_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .user_set_user_name(&app, &u.id, b"n2", b"enc:n2", 6_000)
            .await
            .unwrap(),
        "a user name is set once"
    );
    store
        .user_set_metadata(&app, &u.id, Some(&[7; 40]), 6_500)
        .await
        .unwrap();
    store
        .user_set_locale(&app, &u.id, "DE", 7_000)
        .await
        .unwrap();
    let mut want = u.clone();
    want.user_name_idx = Some(b"n1".to_vec());
    want.user_name_enc = Some(b"enc:n1".to_vec());
    want.metadata_enc = Some(vec![7; 40]);
    want.locale = "DE".into();
    want.updated_at = 7_000;
    assert_eq!(
        user_tuple(&store.user_by_name(&app, b"n1").await.unwrap()),
        user_tuple(&want)
    );
    store
        .user_set_metadata(&app, &u.id, None, 7_000)
        .await
        .unwrap();
    assert_eq!(
        store.user_get(&app, &u.id).await.unwrap().metadata_enc,
        None
    );
    store
        .user_set_metadata(&app, &u.id, Some(&[7; 40]), 7_000)
        .await
        .unwrap();

    // A password change bumps the epoch atomically and can switch 2FA off.
    store
        .user_set_two_factor(
            &app,
            &u.id,
            &TwoFactorChange {
                phone: Some(true),
                google: Some(true),
                totp: Some((Some(&[1]), 9)),
            },
            7_000,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .user_set_password(&app, &u.id, "h2", false, 8_000)
            .await
            .unwrap(),
        1
    );
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!(
        (
            got.password_hash.as_deref(),
            got.epoch,
            got.two_factor_google,
            got.totp_enc.is_some()
        ),
        (Some("h2"), 1, true, true)
    );
    assert_eq!(
        store
            .user_set_password(&app, &u.id, "h3", true, 8_000)
            .await
            .unwrap(),
        2
    );
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!(
        (
            got.two_factor_google,
            got.two_factor_phone,
            got.totp_enc,
            got.totp_last_step
        ),
        (false, false, None, 9)
    );
    assert_eq!(
        (got.locale.as_str(), got.metadata_enc.map(|m| m.len())),
        ("DE", Some(40))
    );

    // A rehash applies only to the hash it replaces.
    assert!(!store.user_rehash(&app, &u.id, "h2", "h2b").await.unwrap());
    assert!(store.user_rehash(&app, &u.id, "h3", "h3b").await.unwrap());
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!((got.password_hash.as_deref(), got.epoch), (Some("h3b"), 2));

    let ghost = id();
    assert_not_found(
        store.user_set_password(&app, &ghost, "h", false, 1).await,
        "set_password",
    );
    assert_not_found(
        store.user_set_locale(&app, &ghost, "EN", 1).await,
        "set_locale",
    );
    assert_not_found(
        store.user_set_metadata(&other_app, &u.id, None, 1).await,
        "set_metadata",
    );

    store.user_set_last_login(&app, &u.id, 9_999).await.unwrap();
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!((got.last_login, got.epoch), (Some(9_999), 2));
}

async fn check_password_change_races_profile_edits(store: S) {
    let app = new_app(&store).await;
    let u = user_row(&app, b"race");
    store.user_create(&u).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, app, id) = (store.clone(), app.clone(), u.id.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .user_set_password(&app, &id, &format!("h{i}"), false, i)
                    .await
                    .map(|_| ())
            } else {
                store.user_set_locale(&app, &id, "FR", i).await
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!(got.epoch, 10, "every password change counted, none undone");
    assert_eq!(got.locale, "FR");
}

async fn check_user_count(store: S) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    assert_eq!(store.user_count(&app).await.unwrap(), 0);
    for h in [&b"c1"[..], b"c2", b"c3"] {
        store.user_create(&user_row(&app, h)).await.unwrap();
    }
    store.user_create(&user_row(&other, b"c1")).await.unwrap();
    assert_eq!(store.user_count(&app).await.unwrap(), 3);
    assert_eq!(store.user_count(&other).await.unwrap(), 1);
}

async fn check_user_unique_constraints(store: S) {
    let app = new_app(&store).await;
    let other_app = new_app(&store).await;
    let mut first = user_row(&app, b"same");
    first.user_name_idx = Some(b"name".to_vec());
    store.user_create(&first).await.unwrap();
    assert_conflict(
        store.user_create(&user_row(&app, b"same")).await,
        "users_handle",
    );
    let mut dup_name = user_row(&app, b"other-handle");
    dup_name.user_name_idx = Some(b"name".to_vec());
    assert_conflict(store.user_create(&dup_name).await, "users_user_name");
    // Taking a user name by update conflicts too.
    let second = user_row(&app, b"second");
    store.user_create(&second).await.unwrap();
    assert_conflict(
        store
            .user_set_user_name(&app, &second.id, b"name", b"enc", 1)
            .await,
        "users_user_name",
    );
    // Users without a user name do not collide; other apps are separate namespaces.
    store.user_create(&user_row(&app, b"third")).await.unwrap();
    let mut elsewhere = user_row(&other_app, b"same");
    elsewhere.user_name_idx = Some(b"name".to_vec());
    store.user_create(&elsewhere).await.unwrap();
    // The same id twice is a conflict as well.
    let mut same_id = user_row(&app, b"fourth");
    same_id.id = first.id.clone();
    assert_conflict(store.user_create(&same_id).await, "users_pkey");
}

async fn check_user_phone_and_two_factor(store: S) {
    let app = new_app(&store).await;
    let other_app = new_app(&store).await;
    let mut a = user_row(&app, b"pa");
    let mut b = user_row(&app, b"pb");
    store.user_create(&a).await.unwrap();
    store.user_create(&b).await.unwrap();
    assert_not_found(store.user_by_phone(&app, b"p1").await, "by_phone");

    // An unverified number has no index: two users may both be verifying it.
    a.phone_enc = Some(b"enc:p1".to_vec());
    b.phone_enc = Some(b"enc:p1".to_vec());
    store.user_set_phone(&a).await.unwrap();
    store.user_set_phone(&b).await.unwrap();
    assert_not_found(store.user_by_phone(&app, b"p1").await, "unverified");

    // Verified, it is unique per app, and only the phone columns are written.
    a.phone_idx = Some(b"p1".to_vec());
    a.phone_verified = true;
    a.two_factor_phone = true;
    a.epoch = 99;
    a.locale = "FR".into();
    a.updated_at = 6_000;
    store.user_set_phone(&a).await.unwrap();
    let got = store.user_by_phone(&app, b"p1").await.unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(
        (
            got.phone_enc.as_deref(),
            got.phone_verified,
            got.two_factor_phone
        ),
        (Some(&b"enc:p1"[..]), true, false)
    );
    assert_eq!(
        (got.epoch, got.locale.as_str(), got.updated_at),
        (0, "EN", 6_000)
    );
    b.phone_idx = Some(b"p1".to_vec());
    b.phone_verified = true;
    assert_conflict(store.user_set_phone(&b).await, "users_phone");
    let mut elsewhere = user_row(&other_app, b"pa");
    store.user_create(&elsewhere).await.unwrap();
    elsewhere.phone_idx = Some(b"p1".to_vec());
    store.user_set_phone(&elsewhere).await.unwrap();

    // Two-factor columns only, and only those named.
    let secret = vec![5; 48];
    store
        .user_set_two_factor(
            &app,
            &a.id,
            &TwoFactorChange {
                google: Some(true),
                totp: Some((Some(&secret), 42)),
                ..TwoFactorChange::default()
            },
            6_500,
        )
        .await
        .unwrap();
    let got = store.user_get(&app, &a.id).await.unwrap();
    assert_eq!(
        (
            got.two_factor_google,
            got.two_factor_phone,
            got.totp_last_step
        ),
        (true, false, 42),
        "the phone flag was written neither by set_phone nor here"
    );
    assert_eq!(got.totp_enc, Some(vec![5; 48]));
    assert_eq!(got.updated_at, 6_500);
    store
        .user_set_two_factor(
            &app,
            &a.id,
            &TwoFactorChange {
                phone: Some(true),
                ..TwoFactorChange::default()
            },
            6_600,
        )
        .await
        .unwrap();
    let got = store.user_get(&app, &a.id).await.unwrap();
    assert_eq!(
        (
            got.two_factor_google,
            got.two_factor_phone,
            got.totp_last_step
        ),
        (true, true, 42)
    );
    assert_eq!(got.totp_enc, Some(vec![5; 48]));

    // The TOTP step only moves forward.
    assert!(!store.user_totp_advance(&app, &a.id, 42).await.unwrap());
    assert!(!store.user_totp_advance(&app, &a.id, 41).await.unwrap());
    assert!(store.user_totp_advance(&app, &a.id, 43).await.unwrap());
    assert_eq!(
        store.user_get(&app, &a.id).await.unwrap().totp_last_step,
        43
    );
    assert!(
        !store
            .user_totp_advance(&other_app, &a.id, 50)
            .await
            .unwrap()
    );

    let mut ghost = user_row(&app, b"ghost");
    ghost.id = id();
    assert_not_found(store.user_set_phone(&ghost).await, "set_phone");
    assert_not_found(
        store
            .user_set_two_factor(&app, &ghost.id, &TwoFactorChange::default(), 1)
            .await,
        "set_two_factor",
    );
}

async fn check_totp_advance_race(store: S) {
    let app = new_app(&store).await;
    let u = user_row(&app, b"t");
    store.user_create(&u).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, app, id) = (store.clone(), app.clone(), u.id.clone());
        tasks.push(tokio::spawn(async move {
            store.user_totp_advance(&app, &id, 1_000).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "one TOTP step is accepted once");
}

async fn check_signups(store: S) {
    let app = new_app(&store).await;
    let s1 = signup_row(&app, b"h", b"code-1");
    store.signup_upsert(&s1, "").await.unwrap();
    let got = store.signup_get(&app, b"h").await.unwrap();
    assert_eq!(
        (
            got.id.as_str(),
            got.code_hash.as_slice(),
            got.metadata_enc.as_deref()
        ),
        (s1.id.as_str(), &b"code-1"[..], Some(&[9u8, 9][..]))
    );
    // A second signup for the handle replaces the first (latest password wins).
    let mut s2 = signup_row(&app, b"h", b"code-2");
    s2.password_hash = "hash-2".into();
    s2.metadata_enc = None;
    s2.updated_at = 2_000;
    store.signup_upsert(&s2, "").await.unwrap();
    let got = store.signup_get(&app, b"h").await.unwrap();
    assert_eq!(
        (
            got.id.as_str(),
            got.code_hash.as_slice(),
            got.password_hash.as_str(),
            got.metadata_enc.as_deref(),
            got.updated_at,
            got.contested
        ),
        (s2.id.as_str(), &b"code-2"[..], "hash-2", None, 2_000, true),
        "replaced with another password while pending: contested"
    );
    store.signup_delete(&app, b"h").await.unwrap();
    assert_not_found(store.signup_get(&app, b"h").await, "signup_get");
    store.signup_delete(&app, b"h").await.unwrap();
}

async fn check_signup_contest(store: S) {
    let app = new_app(&store).await;
    let first = signup_row(&app, b"h", b"c1");
    store.signup_upsert(&first, "").await.unwrap();
    // The same password again (the caller matched the stored hash): not contested.
    let mut again = signup_row(&app, b"h", b"c2");
    again.updated_at = 1_500;
    store.signup_upsert(&again, "hash").await.unwrap();
    assert!(!store.signup_get(&app, b"h").await.unwrap().contested);
    // A stale match (the stored hash is no longer the one the caller saw) is a contest.
    let mut other = signup_row(&app, b"h", b"c3");
    other.password_hash = "hash-x".into();
    store.signup_upsert(&other, "hash-old").await.unwrap();
    assert!(store.signup_get(&app, b"h").await.unwrap().contested);
    // A contest stays while the same password is re-requested ...
    let mut same = signup_row(&app, b"h", b"c4");
    same.password_hash = "hash-x".into();
    store.signup_upsert(&same, "hash-x").await.unwrap();
    assert!(store.signup_get(&app, b"h").await.unwrap().contested);
    // ... and ends when the pending signup had expired before the new request.
    let mut fresh = signup_row(&app, b"h", b"c5");
    fresh.password_hash = "hash-y".into();
    fresh.created_at = 100_000;
    fresh.updated_at = 100_000;
    fresh.expires_at = 200_000;
    store.signup_upsert(&fresh, "").await.unwrap();
    let got = store.signup_get(&app, b"h").await.unwrap();
    assert_eq!(
        (got.password_hash.as_str(), got.contested),
        ("hash-y", false)
    );
}

async fn check_signup_complete(store: S) {
    let app = new_app(&store).await;
    let s = signup_row(&app, b"h", b"c");
    store.signup_upsert(&s, "").await.unwrap();
    // An outdated signup id (replaced by a newer signup) completes nothing.
    assert_not_found(
        store.signup_complete(&id(), &user_row(&app, b"h")).await,
        "unknown signup",
    );
    let user = user_row(&app, b"h");
    store.signup_complete(&s.id, &user).await.unwrap();
    assert_not_found(store.signup_get(&app, b"h").await, "signup removed");
    store.user_get(&app, &user.id).await.unwrap();
    assert_not_found(
        store.signup_complete(&s.id, &user_row(&app, b"h")).await,
        "completed twice",
    );
    // A user with that handle already exists: Conflict, and the signup stays (rolled back).
    let s = signup_row(&app, b"h", b"c2");
    store.signup_upsert(&s, "").await.unwrap();
    assert_conflict(
        store.signup_complete(&s.id, &user_row(&app, b"h")).await,
        "users_handle",
    );
    assert_eq!(store.signup_get(&app, b"h").await.unwrap().id, s.id);
}

async fn check_signup_complete_race(store: S) {
    let app = new_app(&store).await;
    let s = signup_row(&app, b"race", b"c");
    store.signup_upsert(&s, "").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        let user = user_row(&app, b"race");
        let sid = s.id.clone();
        tasks.push(tokio::spawn(async move {
            store.signup_complete(&sid, &user).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::NotFound) => {}
            Err(e) => panic!("a losing completion must see NotFound, got {e:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one completion wins");
    store.user_by_handle(&app, b"race").await.unwrap();
}

fn invite_row(app_id: &str, handle: &[u8], sender: &str, code: &[u8]) -> InviteRow {
    InviteRow {
        app_id: app_id.into(),
        handle_idx: handle.to_vec(),
        sender_id: sender.into(),
        code_hash: code.to_vec(),
        payload: [b"sealed:", code].concat(),
        expires_at: 90_000,
        created_at: 1_000,
    }
}

async fn check_invites(store: S) {
    let app = new_app(&store).await;
    let first = invite_row(&app, b"inv", "sender-a", b"ca");
    let mut second = invite_row(&app, b"inv", "sender-b", b"cb");
    second.created_at = 2_000;
    store.invite_put(&first).await.unwrap();
    store.invite_put(&second).await.unwrap();
    store
        .invite_put(&invite_row(&app, b"other", "sender-a", b"co"))
        .await
        .unwrap();
    // A second inviter adds an invite of its own; oldest first.
    assert_eq!(
        store.invites_for(&app, b"inv").await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    // The same inviter again replaces only its own.
    let mut again = invite_row(&app, b"inv", "sender-a", b"ca2");
    again.created_at = 3_000;
    store.invite_put(&again).await.unwrap();
    assert_eq!(
        store.invites_for(&app, b"inv").await.unwrap(),
        vec![second.clone(), again.clone()]
    );
    // A replaced code takes nothing.
    assert_not_found(
        store
            .invite_take_and_create_user(&first, &user_row(&app, b"inv"))
            .await,
        "replaced invite",
    );
    assert_not_found(store.user_by_handle(&app, b"inv").await, "no user yet");
    // Taking one creates the user and spends the handle's other invites.
    let user = user_row(&app, b"inv");
    store
        .invite_take_and_create_user(&second, &user)
        .await
        .unwrap();
    store.user_get(&app, &user.id).await.unwrap();
    assert!(store.invites_for(&app, b"inv").await.unwrap().is_empty());
    assert_eq!(store.invites_for(&app, b"other").await.unwrap().len(), 1);
    // A user with the handle already exists: Conflict, and the invite stays (rolled back).
    let late = invite_row(&app, b"inv", "sender-c", b"cc");
    store.invite_put(&late).await.unwrap();
    assert_conflict(
        store
            .invite_take_and_create_user(&late, &user_row(&app, b"inv"))
            .await,
        "users_handle",
    );
    assert_eq!(store.invites_for(&app, b"inv").await.unwrap(), vec![late]);
    store.invite_delete(&app, b"inv", "sender-c").await.unwrap();
    assert!(store.invites_for(&app, b"inv").await.unwrap().is_empty());
    store.invite_delete(&app, b"inv", "sender-c").await.unwrap();
    // Deleting a user removes the invites it sent.
    let sender = user_row(&app, b"sender");
    store.user_create(&sender).await.unwrap();
    store
        .invite_put(&invite_row(&app, b"x", &sender.id, b"cx"))
        .await
        .unwrap();
    store.user_delete(&sender).await.unwrap();
    assert!(store.invites_for(&app, b"x").await.unwrap().is_empty());
}

async fn check_invite_take_race(store: S) {
    let app = new_app(&store).await;
    let invites: Vec<InviteRow> = (0..5)
        .map(|i| invite_row(&app, b"race", &format!("sender-{i}"), &[i]))
        .collect();
    for i in &invites {
        store.invite_put(i).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in invites.iter().chain(invites.iter()) {
        let (store, invite, user) = (store.clone(), i.clone(), user_row(&app, b"race"));
        tasks.push(tokio::spawn(async move {
            store.invite_take_and_create_user(&invite, &user).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::NotFound) | Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("a losing invite must see NotFound or Conflict, got {e:?}"),
        }
    }
    assert_eq!(won, 1, "one account from any number of invites");
    assert!(store.invites_for(&app, b"race").await.unwrap().is_empty());
}

async fn check_admin_tokens(store: S) {
    let t = |id: &str, created_at: i64| AdminTokenRow {
        id: id.into(),
        name: format!("name of {id}"),
        secret_hash: id.as_bytes().to_vec(),
        created_at,
        expires_at: Some(created_at + 10),
        revoked_at: None,
        last_used_at: None,
    };
    let (a, b) = (id(), id());
    store.admin_token_insert(&t(&b, 2)).await.unwrap();
    store.admin_token_insert(&t(&a, 1)).await.unwrap();
    assert_conflict(
        store.admin_token_insert(&t(&a, 1)).await,
        "admin_tokens_pkey",
    );
    assert_eq!(store.admin_token_get(&a).await.unwrap(), t(&a, 1));
    let listed: Vec<String> = store
        .admin_token_list()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id == a || r.id == b)
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, vec![a.clone(), b.clone()], "oldest first");
    store.admin_token_touch(&a, 7).await.unwrap();
    assert!(store.admin_token_revoke(&a, 8).await.unwrap());
    assert!(
        !store.admin_token_revoke(&a, 9).await.unwrap(),
        "revoked once"
    );
    assert!(
        !store.admin_token_revoke(&id(), 9).await.unwrap(),
        "unknown"
    );
    let got = store.admin_token_get(&a).await.unwrap();
    assert_eq!((got.last_used_at, got.revoked_at), (Some(7), Some(8)));
    assert_not_found(store.admin_token_get(&id()).await, "unknown token");
}

async fn check_app_delete_and_key_rotation(store: S) {
    let app = new_app(&store).await;
    let other = new_app(&store).await;
    let mut user = user_row(&app, b"u");
    user.anonymous = true;
    store.user_create(&user).await.unwrap();
    store.user_create(&user_row(&app, b"v")).await.unwrap();
    store.user_create(&user_row(&other, b"u")).await.unwrap();
    store
        .signup_upsert(&signup_row(&app, b"s", b"c"), "")
        .await
        .unwrap();
    store
        .invite_put(&invite_row(&app, b"i", "x", b"c"))
        .await
        .unwrap();
    assert_eq!(
        store.app_counts(&app).await.unwrap(),
        AppCounts {
            users: 2,
            anonymous_users: 1,
            pending_signups: 1,
            invites: 1
        }
    );
    // Rotation: each new key becomes active, the previous one retires, at most 3 published.
    let mut kids = vec![store.app_get(&app).await.unwrap().active_kid];
    for n in 0..3 {
        let mut k = key_row(&app);
        k.kid = format!("{app}-k{n}");
        k.created_at = 10_000 + n;
        store.app_key_rotate(&k, 3).await.unwrap();
        kids.push(k.kid);
    }
    assert_eq!(store.app_get(&app).await.unwrap().active_kid, kids[3]);
    let mut status: Vec<(String, String)> = store
        .app_keys(&app)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.status))
        .collect();
    status.sort();
    let mut want = vec![
        (kids[0].clone(), "retired".to_owned()),
        (kids[1].clone(), "retiring".to_owned()),
        (kids[2].clone(), "retiring".to_owned()),
        (kids[3].clone(), "active".to_owned()),
    ];
    want.sort();
    assert_eq!(status, want);
    let mut stray = key_row(&id());
    stray.kid = id();
    assert_not_found(store.app_key_rotate(&stray, 3).await, "unknown app");
    // Deletion takes everything of the app and nothing of another.
    store.app_delete(&app).await.unwrap();
    assert_not_found(store.app_get(&app).await, "app gone");
    assert!(store.app_keys(&app).await.unwrap().is_empty());
    assert_eq!(store.app_counts(&app).await.unwrap(), AppCounts::default());
    assert_eq!(store.app_counts(&other).await.unwrap().users, 1);
    assert_not_found(store.app_delete(&app).await, "deleted twice");
}

async fn check_user_listing_and_status(store: S) {
    let app = new_app(&store).await;
    let mut ids = Vec::new();
    for n in 0..5u8 {
        let mut u = user_row(&app, &[b'p', n]);
        u.created_at = 1_000 + i64::from(n);
        store.user_create(&u).await.unwrap();
        ids.push(u.id);
    }
    let page = |limit, offset| {
        let store = store.clone();
        let app = app.clone();
        async move {
            store
                .user_list(&app, limit, offset)
                .await
                .unwrap()
                .into_iter()
                .map(|u| u.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(2, 0).await, ids[0..2].to_vec());
    assert_eq!(page(2, 4).await, ids[4..].to_vec());
    assert!(page(2, 10).await.is_empty());
    store
        .user_set_status(&app, &ids[1], "suspend", 9_000)
        .await
        .unwrap();
    let u = store.user_get(&app, &ids[1]).await.unwrap();
    assert_eq!(
        (u.status.as_str(), u.epoch, u.updated_at),
        ("suspend", 1, 9_000)
    );
    assert_not_found(
        store.user_set_status(&app, "nobody", "active", 1).await,
        "unknown user",
    );
    for n in 0..3u8 {
        let mut s = signup_row(&app, &[b's', n], b"c");
        s.created_at = 100 + i64::from(n);
        store.signup_upsert(&s, "").await.unwrap();
        let mut i = invite_row(&app, &[b'i', n], "x", b"c");
        i.created_at = 100 + i64::from(n);
        store.invite_put(&i).await.unwrap();
    }
    let signups = store.signup_list(&app, 2, 1).await.unwrap();
    assert_eq!(
        signups
            .iter()
            .map(|s| s.handle_idx.clone())
            .collect::<Vec<_>>(),
        vec![b"s\x01".to_vec(), b"s\x02".to_vec()]
    );
    let invites = store.invite_list(&app, 10, 0).await.unwrap();
    assert_eq!(
        invites
            .iter()
            .map(|i| i.handle_idx.clone())
            .collect::<Vec<_>>(),
        vec![b"i\x00".to_vec(), b"i\x01".to_vec(), b"i\x02".to_vec()]
    );
}

async fn check_codes(store: S) {
    let app = new_app(&store).await;
    let code = |hash: &[u8], payload: Option<Vec<u8>>| CodeRow {
        app_id: app.clone(),
        purpose: "reset".into(),
        subject: b"subject".to_vec(),
        code_hash: hash.to_vec(),
        payload,
        expires_at: 50_000,
        created_at: 1_000,
    };
    store.code_put(&code(b"one", None)).await.unwrap();
    let got = store.code_get(&app, "reset", b"subject").await.unwrap();
    assert_eq!(
        (got.code_hash.as_slice(), got.payload, got.expires_at),
        (&b"one"[..], None, 50_000)
    );
    // A new code replaces the outstanding one.
    store
        .code_put(&code(b"two", Some(vec![5, 6])))
        .await
        .unwrap();
    let got = store.code_get(&app, "reset", b"subject").await.unwrap();
    assert_eq!(
        (got.code_hash.as_slice(), got.payload.as_deref()),
        (&b"two"[..], Some(&[5u8, 6][..]))
    );
    assert_not_found(store.code_get(&app, "invite", b"subject").await, "purpose");
    assert_not_found(store.code_get(&app, "reset", b"nobody").await, "subject");
    // Single use: a stale hash takes nothing; the right one exactly once.
    assert!(
        !store
            .code_take(&app, "reset", b"subject", b"one")
            .await
            .unwrap()
    );
    assert!(
        store
            .code_take(&app, "reset", b"subject", b"two")
            .await
            .unwrap()
    );
    assert!(
        !store
            .code_take(&app, "reset", b"subject", b"two")
            .await
            .unwrap()
    );
    assert_not_found(store.code_get(&app, "reset", b"subject").await, "taken");
}

async fn check_code_take_race(store: S) {
    let app = new_app(&store).await;
    store
        .code_put(&CodeRow {
            app_id: app.clone(),
            purpose: "login".into(),
            subject: b"s".to_vec(),
            code_hash: b"h".to_vec(),
            payload: None,
            expires_at: 1,
            created_at: 1,
        })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, app) = (store.clone(), app.clone());
        tasks.push(tokio::spawn(async move {
            store.code_take(&app, "login", b"s", b"h").await
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "a code is taken exactly once");
}

async fn check_attempts(store: S) {
    let key = format!("code:{}", id());
    let other = format!("login:{}", id());
    for expected in 1..=3 {
        assert_eq!(
            store.attempt_hit(&key, 10_000, 1_000).await.unwrap(),
            expected
        );
    }
    assert_eq!(store.attempt_hit(&other, 10_000, 1_000).await.unwrap(), 1);
    // Still inside the window (started at 10_000), then past it: the count starts over.
    assert_eq!(store.attempt_hit(&key, 10_999, 1_000).await.unwrap(), 4);
    assert_eq!(store.attempt_hit(&key, 11_000, 1_000).await.unwrap(), 1);
    assert_eq!(store.attempt_hit(&key, 11_500, 1_000).await.unwrap(), 2);
    store.attempt_clear(&key).await.unwrap();
    assert_eq!(store.attempt_hit(&key, 11_600, 1_000).await.unwrap(), 1);
    assert_eq!(store.attempt_hit(&other, 11_600, 10_000).await.unwrap(), 2);
    store.attempt_clear("never-hit").await.unwrap();
}

async fn check_attempts_parallel(store: S) {
    let key = format!("code:{}", id());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, key) = (store.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            store.attempt_hit(&key, 50_000, 3_600_000).await
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        let n = t.await.unwrap().unwrap();
        assert!(seen.insert(n), "count {n} returned twice: a lost update");
    }
    assert_eq!(seen, (1..=20).collect::<BTreeSet<i64>>());
}

type Check = fn(S) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A database the checks run against; the PostgreSQL schema is dropped when the check is done.
struct TestDb {
    url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    TestDb {
        url,
        cleanup: None,
        _dir: Some(dir),
    }
}

/// `TEST_DATABASE_URL`, or `None` (skip) when unset; CI must not skip.
fn pg_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but TEST_DATABASE_URL is not: the PostgreSQL runs must not be skipped"
            );
            eprintln!("skipping PostgreSQL run: TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// The URL with `search_path` set to `schema` for every connection. A schema per test rather
/// than a database: `CREATE DATABASE` costs about a second of WAL and fsync on this machine
/// kind, a schema a few milliseconds.
fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

async fn pg_db(admin: &str) -> TestDb {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    TestDb {
        url: with_search_path(admin, &name),
        cleanup: Some((admin.to_owned(), name)),
        _dir: None,
    }
}

async fn drop_db(admin: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await {
        let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            eprintln!("could not drop test schema {name}: {e}");
        }
        let _ = conn.close().await;
    }
}

/// Runs one check on a fresh store; the database is dropped even if the check panics.
async fn run(db: TestDb, check: Check) {
    let opts = PoolOptions {
        max_connections: 8,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Some(Duration::from_secs(30)),
    };
    let store = SqlStore::connect(&db.url, opts).await.unwrap();
    let pool = store.pool().clone();
    let outcome = tokio::spawn(check(Arc::new(store))).await;
    pool.close().await;
    if let Some((admin, name)) = &db.cleanup {
        drop_db(admin, name).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// For each check, a module with a `sqlite` and a `postgres` test.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::run(super::sqlite_db(), |s| Box::pin(super::$check(s))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(admin) = super::pg_admin_url() {
                    let db = super::pg_db(&admin).await;
                    super::run(db, |s| Box::pin(super::$check(s))).await;
                }
            }
        }
    )*};
}

conformance!(
    check_ping,
    check_server_key_first_writer_wins,
    check_apps,
    check_users,
    check_user_unique_constraints,
    check_user_count,
    check_password_change_races_profile_edits,
    check_user_phone_and_two_factor,
    check_totp_advance_race,
    check_signups,
    check_signup_contest,
    check_signup_complete,
    check_signup_complete_race,
    check_invites,
    check_invite_take_race,
    check_admin_tokens,
    check_app_delete_and_key_rotation,
    check_user_listing_and_status,
    check_codes,
    check_code_take_race,
    check_attempts,
    check_attempts_parallel,
);

#[test]
fn search_path_is_added_to_urls() {
    assert_eq!(
        with_search_path("postgres://postgres@127.0.0.1:5432/test", "t_1"),
        "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Dt_1"
    );
    assert_eq!(
        with_search_path("postgres://u:p@h/test?sslmode=disable", "t_1"),
        "postgres://u:p@h/test?sslmode=disable&options=-c%20search_path%3Dt_1"
    );
}

#[tokio::test]
async fn postgres_statement_timeout_is_set_and_answers_unavailable() {
    let Some(admin) = pg_admin_url() else {
        return;
    };
    let db = pg_db(&admin).await;
    let opts = PoolOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Some(Duration::from_millis(1_500)),
    };
    let store = SqlStore::connect(&db.url, opts).await.unwrap();
    let shown = sqlx::query("SELECT current_setting('statement_timeout')")
        .fetch_one(store.pool())
        .await
        .map(|row| sqlx::Row::get::<String, _>(&row, 0));
    let slow = sqlx::query("SELECT 1 FROM pg_sleep(5)")
        .execute(store.pool())
        .await
        .map_err(super::sql::map_err);
    store.pool().close().await;
    if let Some((admin, name)) = &db.cleanup {
        drop_db(admin, name).await;
    }
    assert_eq!(shown.unwrap(), "1500ms");
    assert!(
        matches!(slow, Err(StoreError::Unavailable(_))),
        "a cancelled statement is an outage (503), got {slow:?}"
    );
}

// Checks of the keys-and-migration store (issue 8).
mod migration;
