//! Turns one `admission.k8s.io/v1` AdmissionReview into its answer.
//!
//! Invariant: the answer always allows the request. The injector may add a patch or a
//! warning but never blocks a deploy, even for a malformed review; every decision is
//! logged.

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Status};
use serde_json::Value;

use super::patch::{self, Decision};
use super::sidecar::SidecarConfig;

/// Answers the AdmissionReview in `body` with a JSON AdmissionReview response.
pub fn answer(body: &[u8], config: &SidecarConfig) -> Vec<u8> {
    let response = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body) {
        Ok(review) => match TryInto::<AdmissionRequest<DynamicObject>>::try_into(review) {
            Ok(request) => respond(&request, config),
            Err(err) => malformed(body, &err.to_string()),
        },
        Err(err) => malformed(body, &err.to_string()),
    };
    let mut review = serde_json::to_value(response.into_review())
        .expect("an AdmissionReview always serialises to JSON");
    base64_patch(&mut review);
    serde_json::to_vec(&review).expect("a JSON value always serialises")
}

/// kube-core serialises `patch` as an array of byte values; the API server's documented
/// wire form (`[]byte` in Go) is a base64 string, which every Kubernetes version accepts.
fn base64_patch(review: &mut Value) {
    use base64::Engine;
    let Some(patch) = review.pointer_mut("/response/patch") else {
        return;
    };
    let bytes: Option<Vec<u8>> = patch.as_array().map(|items| {
        items
            .iter()
            .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect()
    });
    if let Some(bytes) = bytes {
        *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
}

fn respond(request: &AdmissionRequest<DynamicObject>, config: &SidecarConfig) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let namespace = request.namespace.as_deref().unwrap_or_default();
    let is_pod_create = request.kind.group.is_empty()
        && request.kind.kind == "Pod"
        && request.sub_resource.is_none()
        && request.operation == Operation::Create;
    let Some(object) = request.object.as_ref().filter(|_| is_pod_create) else {
        tracing::info!(uid = %request.uid, namespace, kind = %request.kind.kind,
            operation = ?request.operation, decision = "leave", "not a pod being created");
        return response;
    };
    let pod: Pod = match serde_json::to_value(object).and_then(serde_json::from_value) {
        Ok(pod) => pod,
        Err(err) => {
            return warn(
                response,
                &request.uid,
                &format!("the object is not a valid Pod: {err}"),
            )
        }
    };
    let name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone())
        .unwrap_or_default();
    match patch::decide(&pod, config) {
        Decision::Inject(patch) => {
            tracing::info!(uid = %request.uid, namespace, pod = %name, decision = "inject",
                operations = patch.0.len(), "sidecar injected");
            match response.with_patch(patch) {
                Ok(response) => response,
                Err(err) => warn(
                    AdmissionResponse::from(request),
                    &request.uid,
                    &err.to_string(),
                ),
            }
        }
        Decision::Leave { reason, warning } => {
            tracing::info!(uid = %request.uid, namespace, pod = %name, decision = "leave",
                %reason, "pod left unchanged");
            let mut response = response;
            response.warnings = warning.map(|w| vec![w]);
            response
        }
    }
}

/// Allows a review that cannot be read, with a warning, keeping its `uid` when one can
/// be found so the API server accepts the answer.
fn malformed(body: &[u8], problem: &str) -> AdmissionResponse {
    let uid = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value.pointer("/request/uid")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut response = AdmissionResponse::invalid(problem);
    response.uid = uid.clone();
    warn(
        response,
        &uid,
        &format!("malformed AdmissionReview: {problem}"),
    )
}

fn warn(mut response: AdmissionResponse, uid: &str, problem: &str) -> AdmissionResponse {
    tracing::warn!(%uid, decision = "leave", problem, "review not understood; allowed unchanged");
    response.allowed = true;
    response.result = Status::success();
    response.warnings = Some(vec![format!("switchyard injector: {problem}")]);
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::inject::sidecar::SidecarMode;

    fn config() -> SidecarConfig {
        SidecarConfig {
            image: "example/switchyard:test".into(),
            image_pull_policy: "IfNotPresent".into(),
            mode: SidecarMode::Native,
            requests: BTreeMap::new(),
            limits: BTreeMap::new(),
            env: Vec::new(),
            keys_secret: None,
            drain_timeout: "30s".into(),
            run_as_user: 65532,
            shared_state: None,
            shared_state_password: None,
        }
    }

    fn review(object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "team",
                "operation": "CREATE",
                "userInfo": {},
                "object": object,
            }
        }))
        .expect("json")
    }

    fn response(body: &[u8]) -> Value {
        let answer: Value = serde_json::from_slice(&answer(body, &config())).expect("json answer");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        answer["response"].clone()
    }

    #[test]
    fn an_opted_in_pod_gets_a_json_patch() {
        let pod = json!({"metadata": {"labels": {"switchyard.dev/inject": "true"}},
            "spec": {"containers": [{"name": "app", "image": "a"}]}});
        let response = response(&review(pod));
        assert_eq!(response["uid"], "u-1");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        use base64::Engine;
        let encoded = response["patch"]
            .as_str()
            .expect("patch is a base64 string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("valid base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON patch");
        assert!(!patch.0.is_empty());
    }

    #[test]
    fn malformed_reviews_are_allowed_with_a_warning() {
        for body in [
            b"not json".to_vec(),
            serde_json::to_vec(
                &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            )
            .expect("json"),
            review(json!({"spec": {"containers": "nope"}})),
        ] {
            let response = response(&body);
            assert_eq!(response["allowed"], true, "{response}");
            assert!(response["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("switchyard")));
            assert!(response.get("patch").is_none());
        }
        assert_eq!(
            response(&review(json!({"spec": {"containers": 1}})))["uid"],
            "u-1"
        );
    }
}
