//! Where cluster objects come from. Today: manifest files on disk.

pub mod manifests;
