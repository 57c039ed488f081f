//! The routing policy as written: wire types (`spec`), decoding of the three document
//! shapes (`load`), validation with field paths (`validate`) and target request
//! adaptations (`request`). A leaf: the compiled form the proxy reads on every request
//! is the `routing` module's, a layer above.

pub mod load;
pub mod request;
pub mod spec;
pub mod validate;

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
