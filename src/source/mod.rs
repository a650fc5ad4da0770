//! Where cluster objects come from: manifest files, or the Kubernetes API.

pub mod kubernetes;
pub mod manifests;
pub mod supervisor;
