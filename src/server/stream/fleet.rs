//! Server only: this process's view of its fleet — how many instances and clients, and whether
//! the event log answers — kept for the heartbeat (which carries it) and `connected`. A change of
//! the store's health is announced at once (the heartbeat watches for it).

use tokio::sync::watch;

use crate::protocol::{Fleet, STORE_OK, STORE_UNREACHABLE};

/// The fleet as this process last heard of it.
#[derive(Debug)]
pub struct FleetView {
    tx: watch::Sender<Fleet>,
}

impl FleetView {
    /// One instance, no clients; the embedded log is reachable, Redis not until it answers.
    pub fn new(embedded: bool) -> FleetView {
        let (tx, _) = watch::channel(Fleet {
            clients: 0,
            instances: 1,
            store: if embedded {
                STORE_OK
            } else {
                STORE_UNREACHABLE
            }
            .to_owned(),
        });
        FleetView { tx }
    }

    /// The current view.
    pub fn get(&self) -> Fleet {
        self.tx.borrow().clone()
    }

    /// Whether the event log is reachable.
    pub fn store_ok(&self) -> bool {
        self.tx.borrow().store_ok()
    }

    /// Record whether the event log answers; a change wakes [`FleetView::changes`].
    pub fn set_store_ok(&self, ok: bool) {
        let store = if ok { STORE_OK } else { STORE_UNREACHABLE };
        self.tx.send_if_modified(|f| {
            let changed = f.store != store;
            f.store = store.to_owned();
            changed
        });
    }

    /// Record the fleet's size (announced with the next heartbeat, not at once).
    pub fn set_size(&self, clients: u64, instances: u32) {
        self.tx.send_if_modified(|f| {
            f.clients = clients;
            f.instances = instances;
            false
        });
    }

    /// Changes of the store's health.
    pub fn changes(&self) -> watch::Receiver<Fleet> {
        self.tx.subscribe()
    }
}
