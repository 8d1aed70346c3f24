//! The `bedside` binary's library half: what its subcommands do, importable by the tests.
//!
//! - [`serve`]: the all-in-one server (API + SFU + web client) with embedded defaults.
//! - [`agent`]: `bedside robot`, the headless robot agent with its watchdog.
//! - [`media_node`]: `bedside sfu`, a media node alone for clusters, following the API over
//!   [`node_link`].
//! - [`node_local`]: the same channel inside one process, for [`serve`].
//! - [`web`]: the embedded browser client.
//! - [`http_server`]: the HTTP listener all of them use (header timeout, connection cap).
//!
//! Not here: flag parsing (`main.rs`), or any media or booking logic (the `sfu` and `api` crates).

pub mod agent;
pub mod http_server;
pub mod media_node;
pub mod node_link;
pub mod node_local;
pub mod serve;
pub mod web;
