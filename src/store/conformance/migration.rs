//! Conformance checks of [`MigrationStore`](crate::store::migration::MigrationStore), on both
//! backends like the rest of the suite.

use super::*;
use crate::migrate::rotate::TABLES;
use crate::store::migration::RotationRow;

async fn check_legacy_keys_first_put_wins(store: S) {
    assert!(store.legacy_key_put("k1", &[1, 2, 3], 5).await.unwrap());
    assert!(!store.legacy_key_put("k1", &[9], 6).await.unwrap());
    assert!(store.legacy_key_put("k0", &[4], 6).await.unwrap());
    let keys = store.legacy_keys().await.unwrap();
    assert_eq!(
        keys,
        vec![("k0".into(), vec![4]), ("k1".into(), vec![1, 2, 3])]
    );
}

async fn check_import_inserts_skip_what_exists(store: S) {
    let app = id();
    assert!(store.app_put(&app_row(&app, 1)).await.unwrap());
    assert!(!store.app_put(&app_row(&app, 2)).await.unwrap());
    assert_eq!(store.app_get(&app).await.unwrap().created_at, 1);
    assert!(store.app_key_put(&key_row(&app)).await.unwrap());
    assert!(!store.app_key_put(&key_row(&app)).await.unwrap());
    let a = user_row(&app, b"a");
    let b = user_row(&app, b"b");
    assert_eq!(
        store.users_insert(&[a.clone(), b.clone()]).await.unwrap(),
        vec![true, true]
    );
    let mut a2 = user_row(&app, b"a");
    a2.id = id();
    let c = user_row(&app, b"c");
    // An existing handle is skipped, not an error, and the batch goes on.
    assert_eq!(
        store.users_insert(&[a2, c.clone()]).await.unwrap(),
        vec![false, true]
    );
    let page = store.users_after(&app, "", 2).await.unwrap();
    assert_eq!(
        page.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone(), b.id.clone()]
    );
    let rest = store.users_after(&app, &b.id, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, c.id);
}

async fn check_sealed_row_replace_is_conditional(store: S) {
    let app = new_app(&store).await;
    let u = user_row(&app, b"h");
    store.user_create(&u).await.unwrap();
    let users = TABLES.iter().find(|t| t.name == "users").unwrap();
    assert!(store.sealed_count(users).await.unwrap() >= 1);
    let rows = store.sealed_rows(users, "", 100).await.unwrap();
    let row = rows.iter().find(|r| r.pk == u.id).unwrap().clone();
    assert_eq!(row.app_id, app);
    assert_eq!(row.sealed[0].as_deref(), Some(&u.handle_enc[..]));
    assert_eq!(row.sealed[1], None);
    let mut next = row.clone();
    next.sealed[0] = Some(b"new-enc".to_vec());
    next.indexes[0] = Some(b"new-idx".to_vec());
    assert!(store.sealed_row_replace(users, &row, &next).await.unwrap());
    // The row changed: writing over the old values again is refused.
    assert!(!store.sealed_row_replace(users, &row, &next).await.unwrap());
    let got = store.user_get(&app, &u.id).await.unwrap();
    assert_eq!(
        (got.handle_enc.as_slice(), got.handle_idx.as_slice()),
        (&b"new-enc"[..], &b"new-idx"[..])
    );
    // A concurrent change of another sealed column also makes it refuse.
    store
        .user_set_metadata(&app, &u.id, Some(b"m"), 9)
        .await
        .unwrap();
    let mut again = next.clone();
    again.sealed[0] = Some(b"third".to_vec());
    assert!(
        !store
            .sealed_row_replace(users, &next, &again)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .user_get(&app, &u.id)
            .await
            .unwrap()
            .metadata_enc
            .as_deref(),
        Some(&b"m"[..])
    );
}

async fn check_rotation_state_is_one_row(store: S) {
    assert_eq!(store.rotation_get().await.unwrap(), None);
    let row = RotationRow {
        old_kid: 1,
        new_kid: u32::MAX,
        sealed_new: Some(vec![7]),
        phase: "users".into(),
        cursor: String::new(),
        done: 0,
        started_at: 10,
        updated_at: 10,
        finished_at: None,
    };
    assert!(store.rotation_begin(&row).await.unwrap());
    assert!(
        !store
            .rotation_begin(&RotationRow {
                new_kid: 5,
                ..row.clone()
            })
            .await
            .unwrap()
    );
    store.rotation_save("signups", "abc", 42, 11).await.unwrap();
    let got = store.rotation_get().await.unwrap().unwrap();
    assert_eq!(
        (
            got.new_kid,
            got.phase.as_str(),
            got.cursor.as_str(),
            got.done
        ),
        (u32::MAX, "signups", "abc", 42)
    );
    // Not done: forgetting erases the key copy only.
    store.rotation_forget_key().await.unwrap();
    assert_eq!(
        store.rotation_get().await.unwrap().unwrap().sealed_new,
        None
    );
    store.rotation_finish(12).await.unwrap();
    assert_eq!(
        store.rotation_get().await.unwrap().unwrap().finished_at,
        Some(12)
    );
    store.rotation_forget_key().await.unwrap();
    assert_eq!(store.rotation_get().await.unwrap(), None);
}

conformance!(
    check_legacy_keys_first_put_wins,
    check_import_inserts_skip_what_exists,
    check_sealed_row_replace_is_conditional,
    check_rotation_state_is_one_row,
);
