#![no_main]
//! Datagram bytes -> the UDP front end's answer (fast path, then the async handler
//! for what it passes on), for a fixed cluster. Every reply must decode, echo the
//! ID and the question, and fit the size the query allows; responses and runts
//! get no reply.

#[path = "fixture.rs"]
mod fixture;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(reply) = fixture::udp_reply(data) {
        fixture::check_udp_reply(data, &reply);
    }
});
