//! The governance records, read through a short per-instance cache ([`super::cache`]) and
//! written straight to the Store (which refreshes this instance's cache at once).
//!
//! Admin updates are read-modify-write of one record, last write wins (as LiteLLM's
//! database rows); nothing money-related lives in a record, so a lost admin race never
//! loses spend. Uniqueness that must hold across instances (key aliases) uses
//! `put_if_absent` claims.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cache::{Cached, TtlCache};
use super::records::{store_key, BudgetRecord, CustomerRecord, KeyRecord, TeamRecord, UserRecord};
use crate::ports::Clock;
use crate::store::{Store, StoreError};

/// Default bound on how stale a cached record may be (ms).
pub const DEFAULT_CACHE_TTL_MS: u64 = 5_000;

/// Records listed at most by one listing.
pub const LIST_LIMIT: usize = 10_000;

pub struct Directory {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ttl_ms: u64,
    keys: TtlCache<KeyRecord>,
    users: TtlCache<UserRecord>,
    teams: TtlCache<TeamRecord>,
    customers: TtlCache<CustomerRecord>,
    budgets: TtlCache<BudgetRecord>,
}

/// One kind of record: where it lives and which cache keeps it.
trait Kind: Serialize + DeserializeOwned + Clone + Sized {
    fn store_key(id: &str) -> String;
    fn cache(dir: &Directory) -> &TtlCache<Self>;
}

macro_rules! kind {
    ($t:ty, $key:path, $field:ident) => {
        impl Kind for $t {
            fn store_key(id: &str) -> String {
                $key(id)
            }
            fn cache(dir: &Directory) -> &TtlCache<Self> {
                &dir.$field
            }
        }
    };
}

kind!(KeyRecord, store_key::key, keys);
kind!(UserRecord, store_key::user, users);
kind!(TeamRecord, store_key::team, teams);
kind!(CustomerRecord, store_key::customer, customers);
kind!(BudgetRecord, store_key::budget, budgets);

impl Directory {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl_ms: u64) -> Self {
        Directory {
            store,
            clock,
            ttl_ms,
            keys: TtlCache::default(),
            users: TtlCache::default(),
            teams: TtlCache::default(),
            customers: TtlCache::default(),
            budgets: TtlCache::default(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The cache bound, for documentation in responses and logs.
    pub fn cache_ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    async fn read<T: Kind>(&self, id: &str) -> Result<Option<Arc<T>>, StoreError> {
        let now = self.clock.now_ms();
        if let Cached::Fresh(v) = T::cache(self).get(id, now, self.ttl_ms) {
            return Ok(v);
        }
        let value = match self.store.get(&T::store_key(id)).await? {
            None => None,
            Some(bytes) => Some(Arc::new(serde_json::from_slice::<T>(&bytes).map_err(
                |e| StoreError::Corrupt(format!("record {}: {e}", T::store_key(id))),
            )?)),
        };
        T::cache(self).put(id, now, value.clone());
        Ok(value)
    }

    /// Reads the record from the Store itself (admin updates start from the latest).
    async fn read_fresh<T: Kind>(&self, id: &str) -> Result<Option<T>, StoreError> {
        T::cache(self).forget(id);
        Ok(self.read::<T>(id).await?.map(|a| (*a).clone()))
    }

    async fn write<T: Kind>(&self, id: &str, record: T) -> Result<Arc<T>, StoreError> {
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", T::store_key(id))))?;
        self.store.put(&T::store_key(id), &bytes, None).await?;
        let record = Arc::new(record);
        T::cache(self).put(id, self.clock.now_ms(), Some(Arc::clone(&record)));
        Ok(record)
    }

    async fn insert_if_absent<T: Kind>(&self, id: &str, record: T) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", T::store_key(id))))?;
        let written = self
            .store
            .put_if_absent(&T::store_key(id), &bytes, None)
            .await?;
        // Either way the record now exists: read it afresh next time.
        T::cache(self).forget(id);
        Ok(written)
    }

    async fn remove<T: Kind>(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.store.delete(&T::store_key(id)).await?;
        T::cache(self).put(id, self.clock.now_ms(), None);
        Ok(removed)
    }

    async fn list<T: Kind>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let entries = self.store.list_prefix(prefix, LIST_LIMIT).await?;
        // A record this version cannot read is skipped, not fatal to the whole listing.
        Ok(entries
            .iter()
            .filter_map(|e| serde_json::from_slice::<T>(&e.value).ok())
            .collect())
    }
}

macro_rules! accessors {
    ($t:ty, $get:ident, $fresh:ident, $put:ident, $delete:ident, $list:ident, $prefix:path) => {
        impl Directory {
            /// The record (cached up to the bound).
            pub async fn $get(&self, id: &str) -> Result<Option<Arc<$t>>, StoreError> {
                self.read::<$t>(id).await
            }
            /// The record as the Store has it now (for read-modify-write).
            pub async fn $fresh(&self, id: &str) -> Result<Option<$t>, StoreError> {
                self.read_fresh::<$t>(id).await
            }
            /// Writes the record (and this instance's cache).
            pub async fn $put(&self, id: &str, record: $t) -> Result<Arc<$t>, StoreError> {
                self.write::<$t>(id, record).await
            }
            /// Removes the record; `true` if it existed.
            pub async fn $delete(&self, id: &str) -> Result<bool, StoreError> {
                self.remove::<$t>(id).await
            }
            /// Every record of this kind (up to [`LIST_LIMIT`]), in id order.
            pub async fn $list(&self) -> Result<Vec<$t>, StoreError> {
                self.list::<$t>($prefix).await
            }
        }
    };
}

accessors!(
    KeyRecord,
    key,
    key_fresh,
    put_key,
    delete_key,
    list_keys,
    store_key::KEY_PREFIX
);
accessors!(
    UserRecord,
    user,
    user_fresh,
    put_user,
    delete_user,
    list_users,
    store_key::USER_PREFIX
);
accessors!(
    TeamRecord,
    team,
    team_fresh,
    put_team,
    delete_team,
    list_teams,
    store_key::TEAM_PREFIX
);
accessors!(
    CustomerRecord,
    customer,
    customer_fresh,
    put_customer,
    delete_customer,
    list_customers,
    store_key::CUSTOMER_PREFIX
);
accessors!(
    BudgetRecord,
    budget,
    budget_fresh,
    put_budget,
    delete_budget,
    list_budgets,
    store_key::BUDGET_PREFIX
);

impl Directory {
    /// Creates the end user's record unless one exists (first spend); `true` when created.
    pub async fn create_customer_if_absent(
        &self,
        record: CustomerRecord,
    ) -> Result<bool, StoreError> {
        let id = record.user_id.clone();
        self.insert_if_absent(&id, record).await
    }

    /// Claims `alias` for the key `token`; `false` when another key holds it.
    pub async fn claim_alias(&self, alias: &str, token: &str) -> Result<bool, StoreError> {
        let key = store_key::key_alias(alias);
        if self
            .store
            .put_if_absent(&key, token.as_bytes(), None)
            .await?
        {
            return Ok(true);
        }
        // Held by this very key already (an update that keeps its alias).
        Ok(self.store.get(&key).await?.as_deref() == Some(token.as_bytes()))
    }

    /// The token holding `alias`, if any.
    pub async fn alias_token(&self, alias: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(&store_key::key_alias(alias))
            .await?
            .and_then(|b| String::from_utf8(b).ok()))
    }

    /// Frees `alias` (a key deleted or renamed).
    pub async fn release_alias(&self, alias: &str) -> Result<(), StoreError> {
        self.store.delete(&store_key::key_alias(alias)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    struct At(std::sync::atomic::AtomicU64);
    #[async_trait::async_trait]
    impl Clock for At {
        fn now_ms(&self) -> u64 {
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        async fn sleep(&self, _ms: u64) {}
    }

    fn setup() -> (Directory, Directory, Arc<At>) {
        let clock = Arc::new(At(1_000.into()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
        (
            Directory::new(Arc::clone(&store), clock.clone(), 5_000),
            Directory::new(store, clock.clone(), 5_000),
            clock,
        )
    }

    fn key(token: &str) -> KeyRecord {
        KeyRecord {
            token: token.into(),
            ..Default::default()
        }
    }

    #[test]
    fn another_instance_sees_a_change_within_the_bound() {
        futures_executor::block_on(async {
            let (here, there, clock) = setup();
            here.put_key("t", key("t")).await.unwrap();
            assert!(!there.key("t").await.unwrap().unwrap().blocked);
            let mut blocked = key("t");
            blocked.blocked = true;
            here.put_key("t", blocked).await.unwrap();
            assert!(
                here.key("t").await.unwrap().unwrap().blocked,
                "at once here"
            );
            assert!(
                !there.key("t").await.unwrap().unwrap().blocked,
                "cached there"
            );
            clock.0.store(6_000, std::sync::atomic::Ordering::Relaxed);
            assert!(
                there.key("t").await.unwrap().unwrap().blocked,
                "after the bound"
            );
        });
    }

    #[test]
    fn deletes_and_lists() {
        futures_executor::block_on(async {
            let (dir, _, _) = setup();
            dir.put_key("a", key("a")).await.unwrap();
            dir.put_key("b", key("b")).await.unwrap();
            assert_eq!(dir.list_keys().await.unwrap().len(), 2);
            assert!(dir.delete_key("a").await.unwrap());
            assert!(dir.key("a").await.unwrap().is_none());
            assert_eq!(dir.list_keys().await.unwrap().len(), 1);
        });
    }

    #[test]
    fn aliases_are_unique() {
        futures_executor::block_on(async {
            let (dir, other, _) = setup();
            assert!(dir.claim_alias("prod", "t1").await.unwrap());
            assert!(dir.claim_alias("prod", "t1").await.unwrap(), "its own");
            assert!(!other.claim_alias("prod", "t2").await.unwrap());
            dir.release_alias("prod").await.unwrap();
            assert!(other.claim_alias("prod", "t2").await.unwrap());
            assert_eq!(
                other.alias_token("prod").await.unwrap().as_deref(),
                Some("t2")
            );
        });
    }
}
