//! The `events` channel's client messages (`ClientEvent::parse`): arbitrary bytes never panic,
//! and whatever parses serialises back to something that parses to the same event.
#![no_main]

use bedside_proto::events::ClientEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = ClientEvent::parse(data) {
        let json = serde_json::to_vec(&ev).expect("an event serialises");
        let again = ClientEvent::parse(&json).expect("its own JSON parses");
        assert_eq!(format!("{again:?}"), format!("{ev:?}"));
    }
});
