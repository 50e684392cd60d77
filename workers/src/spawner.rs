//! The `Spawner` port on Workers: background work runs on the isolate's event loop.

use tollgate_core::ports::{Spawner, Task};

pub struct LocalSpawner;

impl Spawner for LocalSpawner {
    fn spawn(&self, task: Task) {
        wasm_bindgen_futures::spawn_local(task);
    }
}
