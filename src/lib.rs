//! cluster-dns: a Kubernetes cluster DNS server.
//!
//! Data flows one way: Kubernetes objects ([`source`] → [`cluster`]) are turned
//! into records ([`index`]), questions are answered from them ([`answer`]), and
//! [`server`] carries questions and answers over UDP and TCP.

pub mod answer;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod corefile;
pub mod forward;
pub mod index;
pub mod metrics;
pub mod querylog;
pub mod reload;
pub mod run;
pub mod server;
pub mod source;
pub mod zonefile;
