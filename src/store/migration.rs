//! Storage for keys and migration: legacy server keys, bulk import of apps and users, paging
//! for export, and the resumable master key rotation (its state row and the re-sealing of
//! one table's rows at a time, each write conditional on the row not having changed).

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, Row};

use super::sql::{SqlStore, USER_INSERT, bind_user, map_err, user_from};
use super::{AppKeyRow, AppRow, StoreResult, UserRow};

/// The state of the master key rotation (one row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRow {
    pub old_kid: u32,
    pub new_kid: u32,
    /// The new master key (its base64 text) sealed under the old one; `None` once erased.
    pub sealed_new: Option<Vec<u8>>,
    /// The table being re-sealed, or `cleanup`, or `done`.
    pub phase: String,
    /// Primary key of the last row re-sealed in `phase`.
    pub cursor: String,
    /// Rows re-sealed so far.
    pub done: i64,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

/// A table holding sealed values: its primary key, sealed columns and blind-index columns.
/// Names come only from the constants in `migrate::rotate`, never from input.
#[derive(Debug, Clone, Copy)]
pub struct SealedTable {
    pub name: &'static str,
    pub pk: &'static str,
    /// Whether the table has an `app_id` column (the scope of its blind indexes).
    pub has_app: bool,
    pub sealed: &'static [&'static str],
    pub indexes: &'static [&'static str],
}

/// One row of a [`SealedTable`]: sealed values and indexes in the table's column order.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub pk: String,
    pub app_id: String,
    pub sealed: Vec<Option<Vec<u8>>>,
    pub indexes: Vec<Option<Vec<u8>>>,
}

#[async_trait]
pub trait MigrationStore: Send + Sync {
    /// Stores an old server public key; false if it was there already.
    async fn legacy_key_put(&self, kid: &str, public_der: &[u8], now: i64) -> StoreResult<bool>;
    async fn legacy_keys(&self) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Inserts an app unless one has its id; false if it existed.
    async fn app_put(&self, app: &AppRow) -> StoreResult<bool>;
    /// Inserts an app key unless its `kid` exists; false if it existed.
    async fn app_key_put(&self, key: &AppKeyRow) -> StoreResult<bool>;
    /// Inserts users in one transaction, each unless it collides with an existing one
    /// (handle, user name or verified phone); true for each row stored.
    async fn users_insert(&self, users: &[UserRow]) -> StoreResult<Vec<bool>>;
    /// Users of an app with an id after `after_id`, in id order.
    async fn users_after(
        &self,
        app_id: &str,
        after_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>>;

    async fn rotation_get(&self) -> StoreResult<Option<RotationRow>>;
    /// Records a new rotation unless one is recorded; false if there was one.
    async fn rotation_begin(&self, row: &RotationRow) -> StoreResult<bool>;
    async fn rotation_save(
        &self,
        phase: &str,
        cursor: &str,
        done: i64,
        now: i64,
    ) -> StoreResult<()>;
    async fn rotation_finish(&self, now: i64) -> StoreResult<()>;
    /// Erases the sealed new key and, if the rotation is done, the row itself.
    async fn rotation_forget_key(&self) -> StoreResult<()>;
    /// How many rows `table` has.
    async fn sealed_count(&self, table: &SealedTable) -> StoreResult<i64>;
    /// Up to `limit` rows of `table` after primary key `after`.
    async fn sealed_rows(
        &self,
        table: &SealedTable,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<SealedRow>>;
    /// Writes `new` over `old` (sealed values and indexes) if the row still holds `old`;
    /// false if it changed meanwhile.
    async fn sealed_row_replace(
        &self,
        table: &SealedTable,
        old: &SealedRow,
        new: &SealedRow,
    ) -> StoreResult<bool>;
    /// Removes invites whose payload is sealed under `old_kid` (their indexes cannot be
    /// re-keyed: Tessera never holds the invitee's handle in clear) and codes created before
    /// `codes_before`; returns how many went.
    async fn rotation_drop_unrekeyable(&self, old_kid: u32, codes_before: i64) -> StoreResult<u64>;
}

fn rotation_from(row: &sqlx::any::AnyRow) -> Result<RotationRow, sqlx::Error> {
    let kid = |c: &str| -> Result<u32, sqlx::Error> {
        let v: i64 = row.try_get(c)?;
        u32::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    Ok(RotationRow {
        old_kid: kid("old_kid")?,
        new_kid: kid("new_kid")?,
        sealed_new: row.try_get("sealed_new")?,
        phase: row.try_get("phase")?,
        cursor: row.try_get("cursor_pk")?,
        done: row.try_get("done")?,
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

#[async_trait]
impl MigrationStore for SqlStore {
    async fn legacy_key_put(&self, kid: &str, public_der: &[u8], now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO legacy_server_keys (kid, public_der, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kid) DO NOTHING",
        )
        .bind(kid)
        .bind(public_der)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn legacy_keys(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT kid, public_der FROM legacy_server_keys ORDER BY kid")
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get("kid")?, r.try_get("public_der")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn app_put(&self, app: &AppRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO apps (id, name, status, settings, secrets, active_kid, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&app.id)
        .bind(&app.name)
        .bind(&app.status)
        .bind(&app.settings)
        .bind(&app.secrets)
        .bind(&app.active_kid)
        .bind(app.created_at)
        .bind(app.updated_at)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn app_key_put(&self, key: &AppKeyRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO app_keys (kid, app_id, sealed_private, public_der, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.app_id)
        .bind(&key.sealed_private)
        .bind(&key.public_der)
        .bind(&key.status)
        .bind(key.created_at)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn users_insert(&self, users: &[UserRow]) -> StoreResult<Vec<bool>> {
        let sql = format!("{USER_INSERT} ON CONFLICT DO NOTHING");
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let done = bind_user(sqlx::query(AssertSqlSafe(sql.as_str())), u)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            out.push(done.rows_affected() == 1);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn users_after(
        &self,
        app_id: &str,
        after_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let rows =
            sqlx::query("SELECT * FROM users WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(app_id)
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.pool())
                .await
                .map_err(map_err)?;
        rows.iter().map(|r| user_from(r).map_err(map_err)).collect()
    }

    async fn rotation_get(&self) -> StoreResult<Option<RotationRow>> {
        let row = sqlx::query("SELECT * FROM key_rotation WHERE id = 'master'")
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| rotation_from(&r).map_err(map_err)).transpose()
    }

    async fn rotation_begin(&self, r: &RotationRow) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO key_rotation (id, old_kid, new_kid, sealed_new, phase, cursor_pk, done, \
             started_at, updated_at, finished_at) VALUES ('master', $1, $2, $3, $4, $5, $6, $7, \
             $8, NULL) ON CONFLICT (id) DO NOTHING",
        )
        .bind(i64::from(r.old_kid))
        .bind(i64::from(r.new_kid))
        .bind(&r.sealed_new)
        .bind(&r.phase)
        .bind(&r.cursor)
        .bind(r.done)
        .bind(r.started_at)
        .bind(r.updated_at)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotation_save(
        &self,
        phase: &str,
        cursor: &str,
        done: i64,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE key_rotation SET phase = $1, cursor_pk = $2, done = $3, updated_at = $4 \
             WHERE id = 'master'",
        )
        .bind(phase)
        .bind(cursor)
        .bind(done)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn rotation_finish(&self, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE key_rotation SET phase = 'done', cursor_pk = '', finished_at = $1, \
             updated_at = $1 WHERE id = 'master'",
        )
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn rotation_forget_key(&self) -> StoreResult<()> {
        sqlx::query("DELETE FROM key_rotation WHERE id = 'master' AND phase = 'done'")
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE key_rotation SET sealed_new = NULL WHERE id = 'master'")
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn sealed_count(&self, t: &SealedTable) -> StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", t.name);
        sqlx::query(AssertSqlSafe(sql))
            .fetch_one(self.pool())
            .await
            .and_then(|r| r.try_get::<i64, _>("n"))
            .map_err(map_err)
    }

    async fn sealed_rows(
        &self,
        t: &SealedTable,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<SealedRow>> {
        let app = if t.has_app { "app_id" } else { "''" };
        let cols: Vec<&str> = t.sealed.iter().chain(t.indexes.iter()).copied().collect();
        let sql = format!(
            "SELECT {pk} AS pk, {app} AS app_id, {cols} FROM {name} WHERE {pk} > $1 \
             ORDER BY {pk} LIMIT $2",
            pk = t.pk,
            cols = cols.join(", "),
            name = t.name,
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let get = |c: &str| r.try_get::<Option<Vec<u8>>, _>(c);
                Ok(SealedRow {
                    pk: r.try_get("pk")?,
                    app_id: r.try_get("app_id")?,
                    sealed: t.sealed.iter().map(|c| get(c)).collect::<Result<_, _>>()?,
                    indexes: t.indexes.iter().map(|c| get(c)).collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn sealed_row_replace(
        &self,
        t: &SealedTable,
        old: &SealedRow,
        new: &SealedRow,
    ) -> StoreResult<bool> {
        let cols: Vec<&str> = t.sealed.iter().chain(t.indexes.iter()).copied().collect();
        let n = cols.len();
        let sets: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let guards: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} IS NOT DISTINCT FROM ${}", i + 2 + n))
            .collect();
        let sql = format!(
            "UPDATE {name} SET {sets} WHERE {pk} = $1 AND {guards}",
            name = t.name,
            pk = t.pk,
            sets = sets.join(", "),
            guards = guards.join(" AND "),
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(&old.pk);
        for v in new.sealed.iter().chain(new.indexes.iter()) {
            q = q.bind(v.clone());
        }
        for v in old.sealed.iter().chain(old.indexes.iter()) {
            q = q.bind(v.clone());
        }
        let done = q.execute(self.pool()).await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotation_drop_unrekeyable(&self, old_kid: u32, codes_before: i64) -> StoreResult<u64> {
        let rows = sqlx::query("SELECT app_id, handle_idx, sender_id, payload FROM invites")
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?;
        let mut gone = 0;
        for r in &rows {
            let payload: Vec<u8> = r.try_get("payload").map_err(map_err)?;
            if crate::crypto::Keyring::sealed_key_id(&payload) != Some(old_kid) {
                continue;
            }
            let app: String = r.try_get("app_id").map_err(map_err)?;
            let idx: Vec<u8> = r.try_get("handle_idx").map_err(map_err)?;
            let sender: String = r.try_get("sender_id").map_err(map_err)?;
            gone += sqlx::query(
                "DELETE FROM invites WHERE app_id = $1 AND handle_idx = $2 AND sender_id = $3",
            )
            .bind(app)
            .bind(idx)
            .bind(sender)
            .execute(self.pool())
            .await
            .map_err(map_err)?
            .rows_affected();
        }
        gone += sqlx::query("DELETE FROM codes WHERE created_at < $1")
            .bind(codes_before)
            .execute(self.pool())
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(gone)
    }
}
