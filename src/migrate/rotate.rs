//! Master key rotation (DESIGN.md §4): every sealed value is re-sealed under the new key and
//! every blind index re-computed, table by table in batches, while the service keeps running.
//!
//! How serving continues: the rotation records the new key in the database sealed under the
//! old one. Every node holding the old key picks it up (at start and every few seconds), can
//! then open values under either key id, seals new values under the new key, and looks rows
//! up by the blind index of either key. Progress (table and last primary key) is saved after
//! every batch, so a rotation killed half-way resumes where it stopped; rows already under
//! the new key are recognised by the key id they carry and skipped. Each row is rewritten
//! only if it still holds what was read, so a concurrent change is never undone.
//!
//! What cannot be re-keyed: outstanding codes (only keyed hashes are stored) and pending
//! invites (their index is of a handle Tessera never holds in clear). They are removed at the
//! end; users ask for a new code or invite. Pending signups are re-keyed, but their code hash
//! matches only while nodes still hold the old key.
//! Once finished, nodes restart with the new key alone; the first to do so erases the sealed
//! copy of the new key, and the old key is no longer needed.

use std::time::Duration;

use crate::crypto::{Keyring, MasterKey};
use crate::domain::Core;
use crate::store::Store;
use crate::store::migration::{RotationRow, SealedRow, SealedTable};

const CONTEXT_NEW_KEY: &str = "key_rotation.sealed_new:master";
pub const PHASE_CLEANUP: &str = "cleanup";
pub const PHASE_DONE: &str = "done";

/// Every table with sealed values, in the order they are rotated.
pub const TABLES: &[SealedTable] = &[
    SealedTable {
        name: "server_keys",
        pk: "purpose",
        has_app: false,
        sealed: &["sealed"],
        indexes: &[],
    },
    SealedTable {
        name: "apps",
        pk: "id",
        has_app: false,
        sealed: &["secrets"],
        indexes: &[],
    },
    SealedTable {
        name: "app_keys",
        pk: "kid",
        has_app: false,
        sealed: &["sealed_private"],
        indexes: &[],
    },
    SealedTable {
        name: "users",
        pk: "id",
        has_app: true,
        sealed: &[
            "handle_enc",
            "user_name_enc",
            "metadata_enc",
            "totp_enc",
            "phone_enc",
        ],
        indexes: &["handle_idx", "user_name_idx", "phone_idx"],
    },
    SealedTable {
        name: "signups",
        pk: "id",
        has_app: true,
        sealed: &["handle_enc", "metadata_enc"],
        indexes: &["handle_idx"],
    },
];

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// How fast to go.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    pub batch: i64,
    /// Pause after every batch (keeps the database responsive for the live service).
    pub pause: Duration,
    /// Wait after recording a new rotation and before re-sealing anything, so running nodes
    /// (which look every 2 s) load the new key first.
    pub grace: Duration,
}

/// Reported after every batch.
#[derive(Debug, Clone)]
pub struct Progress {
    pub table: &'static str,
    pub done: i64,
    pub total: i64,
}

/// What a finished rotation did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub old_kid: u32,
    pub new_kid: u32,
    pub resealed: i64,
    pub dropped: u64,
    pub resumed: bool,
}

/// The associated data a sealed column is bound to (as the domain seals it).
fn context(table: &str, col: &str, pk: &str) -> String {
    format!("{table}.{}:{pk}", col.strip_suffix("_enc").unwrap_or(col))
}

/// Makes `keyring` follow a rotation recorded in the database: adds the new key (opened with
/// the old one) and seals under it from now on; on a node already on the new key, after the
/// rotation finished, erases the stored copy. Returns the new key id when it was added now.
pub async fn follow(store: &dyn Store, keyring: &Keyring) -> Result<Option<u32>, RotateError> {
    let Some(r) = store.rotation_get().await? else {
        return Ok(None);
    };
    let ids = keyring.ids();
    if !ids.contains(&r.old_kid) {
        // A node started on the new key alone.
        if keyring.current_id() == r.new_kid && r.phase == PHASE_DONE {
            store.rotation_forget_key().await?;
            tracing::info!("master key rotation complete; the old key is no longer needed");
        }
        return Ok(None);
    }
    if ids.contains(&r.new_kid) {
        if keyring.current_id() != r.new_kid {
            keyring.set_current(r.new_kid)?;
        }
        return Ok(None);
    }
    let Some(sealed) = &r.sealed_new else {
        if r.phase == PHASE_DONE {
            return Err(RotateError::Refused(format!(
                "the master key was rotated to key id {:08x}; start with the new key",
                r.new_kid
            )));
        }
        return Ok(None);
    };
    let text = keyring.open_str(CONTEXT_NEW_KEY, sealed)?;
    let new = MasterKey::from_base64(&text)?;
    let id = keyring.add(&new)?;
    keyring.set_current(id)?;
    tracing::info!(
        new_key_id = format!("{id:08x}"),
        "master key rotation under way: reading both keys, sealing under the new one"
    );
    Ok(Some(id))
}

/// Every few seconds, makes a serving node follow a rotation started meanwhile and load
/// legacy server keys imported meanwhile.
pub fn spawn_follower(core: std::sync::Arc<Core>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(e) = follow(core.store.as_ref(), &core.keyring).await {
                tracing::warn!(error = %e, "cannot follow the master key rotation");
            }
            // A legacy server key imported meanwhile (migrate::legacy).
            if let Err(e) = core.load_legacy_keys().await {
                tracing::warn!(error = %e, "cannot load legacy server keys");
            }
        }
    });
}

/// Runs (or resumes) the rotation to `new` with `core`'s key as the old one.
pub async fn rotate(
    core: &Core,
    new: &MasterKey,
    opts: RotateOptions,
    now: impl Fn() -> i64,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary, RotateError> {
    let new_id = Keyring::id_of(new)?;
    let mut state = core.store.rotation_get().await?;
    if let Some(r) = &state
        && r.phase == PHASE_DONE
        && r.new_kid != new_id
    {
        core.store.rotation_forget_key().await?;
        state = None;
    }
    let resumed = state.is_some();
    let state = match state {
        Some(r) if r.new_kid != new_id => {
            return Err(RotateError::Refused(format!(
                "a rotation to key id {:08x} is under way; resume it with that key file",
                r.new_kid
            )));
        }
        Some(r) => r,
        None => {
            let old = core.keyring.current_id();
            if old == new_id {
                return Err(RotateError::Refused(
                    "the new key is the master key in use".into(),
                ));
            }
            let t = now();
            let row = RotationRow {
                old_kid: old,
                new_kid: new_id,
                sealed_new: Some(core.keyring.seal_str(CONTEXT_NEW_KEY, &new.to_base64())?),
                phase: TABLES[0].name.into(),
                cursor: String::new(),
                done: 0,
                started_at: t,
                updated_at: t,
                finished_at: None,
            };
            core.store.rotation_begin(&row).await?;
            tokio::time::sleep(opts.grace).await;
            core.store
                .rotation_get()
                .await?
                .ok_or_else(|| RotateError::Refused("rotation state vanished".into()))?
        }
    };
    if state.phase == PHASE_DONE {
        return Ok(Summary {
            old_kid: state.old_kid,
            new_kid: state.new_kid,
            resealed: state.done,
            dropped: 0,
            resumed,
        });
    }
    if !core.keyring.ids().contains(&state.old_kid) {
        return Err(RotateError::Refused(format!(
            "the rotation started from key id {:08x}; run it with that key as the master key",
            state.old_kid
        )));
    }
    core.keyring.add(new)?;
    core.keyring.set_current(new_id)?;
    let mut total = 0;
    for t in TABLES {
        total += core.store.sealed_count(t).await?;
    }
    let mut done = state.done;
    let start = TABLES
        .iter()
        .position(|t| t.name == state.phase)
        .unwrap_or(TABLES.len());
    for (i, table) in TABLES.iter().enumerate().skip(start) {
        let mut cursor = if i == start {
            state.cursor.clone()
        } else {
            String::new()
        };
        let mut passes = 0;
        loop {
            let mut conflicts = 0;
            loop {
                let rows = core.store.sealed_rows(table, &cursor, opts.batch).await?;
                let Some(last) = rows.last().map(|r| r.pk.clone()) else {
                    break;
                };
                for row in &rows {
                    match reseal(core, table, row, new_id)? {
                        None => {}
                        Some(next) => {
                            if core.store.sealed_row_replace(table, row, &next).await? {
                                done += 1;
                            } else {
                                conflicts += 1;
                            }
                        }
                    }
                }
                cursor = last;
                core.store
                    .rotation_save(table.name, &cursor, done, now())
                    .await?;
                progress(&Progress {
                    table: table.name,
                    done,
                    total,
                });
                if !opts.pause.is_zero() {
                    tokio::time::sleep(opts.pause).await;
                }
            }
            passes += 1;
            // Rows changed under us are taken again once the table has been walked.
            if conflicts == 0 || passes >= 5 {
                break;
            }
            cursor = String::new();
        }
    }
    // A resumed run starts after its saved position, and rows a live update changed under an
    // earlier (killed) run were only remembered in that run's memory: walk every table once
    // more, and finish only when nothing is left under the old key.
    let mut left = 0;
    for _ in 0..5 {
        left = 0;
        for table in TABLES {
            let mut cursor = String::new();
            loop {
                let rows = core.store.sealed_rows(table, &cursor, opts.batch).await?;
                let Some(last) = rows.last().map(|r| r.pk.clone()) else {
                    break;
                };
                for row in &rows {
                    if let Some(next) = reseal(core, table, row, new_id)? {
                        if core.store.sealed_row_replace(table, row, &next).await? {
                            done += 1;
                        } else {
                            left += 1;
                        }
                    }
                }
                cursor = last;
            }
        }
        if left == 0 {
            break;
        }
    }
    if left > 0 {
        return Err(RotateError::Refused(format!(
            "{left} rows kept changing during the rotation and are still under the old key; \
             run the command again to finish"
        )));
    }
    core.store
        .rotation_save(PHASE_CLEANUP, "", done, now())
        .await?;
    // Nodes pick the new key up within seconds of the start; codes issued before that were
    // hashed under the old key only.
    let dropped = core
        .store
        .rotation_drop_unrekeyable(state.old_kid, state.started_at + 10_000)
        .await?;
    core.store.rotation_finish(now()).await?;
    Ok(Summary {
        old_kid: state.old_kid,
        new_kid: new_id,
        resealed: done,
        dropped,
        resumed,
    })
}

/// The row re-sealed under `new_id` with its indexes re-computed; `None` if it already is.
fn reseal(
    core: &Core,
    table: &SealedTable,
    row: &SealedRow,
    new_id: u32,
) -> Result<Option<SealedRow>, RotateError> {
    let stale = row
        .sealed
        .iter()
        .flatten()
        .any(|v| Keyring::sealed_key_id(v) != Some(new_id));
    if !stale {
        return Ok(None);
    }
    let mut plain = Vec::with_capacity(table.sealed.len());
    let mut next = row.clone();
    for (i, col) in table.sealed.iter().enumerate() {
        let ctx = context(table.name, col, &row.pk);
        match &row.sealed[i] {
            Some(v) => {
                let p = zeroize::Zeroizing::new(core.keyring.open(&ctx, v)?);
                next.sealed[i] = Some(core.keyring.seal(&ctx, &p)?);
                plain.push(Some(p));
            }
            None => plain.push(None),
        }
    }
    let text = |i: usize| -> Option<String> {
        plain
            .get(i)
            .and_then(|p| p.as_ref())
            .and_then(|p| String::from_utf8(p.to_vec()).ok())
    };
    let idx = |purpose: &str, value: Option<String>| {
        value.map(|v| core.keyring.blind_index(purpose, &row.app_id, &v))
    };
    match table.name {
        "users" => {
            next.indexes[0] = idx(crate::domain::users::IDX_HANDLE, text(0));
            next.indexes[1] = idx(crate::domain::users::IDX_USER_NAME, text(1));
            // Only a verified phone is indexed.
            if row.indexes[2].is_some() {
                next.indexes[2] = idx(crate::domain::two_factor::IDX_PHONE, text(4));
            }
        }
        "signups" => next.indexes[0] = idx(crate::domain::users::IDX_HANDLE, text(0)),
        _ => {}
    }
    Ok(Some(next))
}
