//! The routing policy: wire types (`spec`), decoding of the three document shapes
//! (`load`), validation with field paths (`validate`), and the compiled form the proxy
//! reads on every request (`compile`).

mod compile;
pub mod load;
pub mod request;
pub mod spec;
pub mod validate;

pub use compile::{Auth, CompileContext, Policy, Provider, Route, Target, Timeouts};
pub use load::{
    decode, decode_and_validate, embedded_default, load_file, run_validate, PolicyError,
};
pub use validate::{validate, FieldError};

use kube::CustomResourceExt;

/// The RoutingPolicy CRD as YAML, generated from [`spec::PolicySpec`]; `deploy/crd.yaml`
/// must equal it.
pub fn crd_yaml() -> String {
    serde_yaml::to_string(&spec::RoutingPolicy::crd()).expect("a CRD always serialises to YAML")
}
