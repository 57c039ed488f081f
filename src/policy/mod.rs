//! The routing policy: wire types (`spec`), validation with field paths (`validate`),
//! and the compiled form the proxy reads on every request.

pub mod spec;

use kube::CustomResourceExt;

/// The RoutingPolicy CRD as YAML, generated from [`spec::PolicySpec`]; `deploy/crd.yaml`
/// must equal it.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&spec::RoutingPolicy::crd()).expect("a CRD always serialises to YAML")
}
