//! `wasi:config/store`: the agent's parameters, exactly those the run was given.

use crate::bindings::wasi::config::store::{Error, Host};
use crate::state::RunState;

impl Host for RunState {
    async fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        Ok(self.grants.config.get(&key).cloned())
    }

    async fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        Ok(self.grants.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
