//! The AdmissionReview fixtures are what the API server sends: each parses as a kube-core
//! `AdmissionReview` and its object as the typed k8s-openapi resource, and the webhook
//! finds every image at its real path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, ReplicationController};
use kube_core::admission::{AdmissionRequest, AdmissionReview};
use kube_core::DynamicObject;
use serde_json::Value;
use vouch_admission::review::{scope, Scope};

fn request(name: &str) -> (Value, AdmissionRequest<DynamicObject>) {
    let v = common::fixture(name);
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(v.clone()).unwrap();
    (v, review.try_into().unwrap())
}

/// The images of a typed pod spec, in the order the webhook reports them.
fn typed_images(spec: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        out.push(c.image.clone().unwrap_or_default());
    }
    for c in &spec.containers {
        out.push(c.image.clone().unwrap_or_default());
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        out.push(c.image.clone().unwrap_or_default());
    }
    out
}

fn typed_spec(kind: &str, object: &Value) -> PodSpec {
    let o = object.clone();
    let t = |tpl: Option<k8s_openapi::api::core::v1::PodTemplateSpec>| tpl.unwrap().spec.unwrap();
    match kind {
        "Pod" => serde_json::from_value::<Pod>(o).unwrap().spec.unwrap(),
        "Deployment" => t(Some(
            serde_json::from_value::<Deployment>(o)
                .unwrap()
                .spec
                .unwrap()
                .template,
        )),
        "ReplicaSet" => t(serde_json::from_value::<ReplicaSet>(o)
            .unwrap()
            .spec
            .unwrap()
            .template),
        "StatefulSet" => t(Some(
            serde_json::from_value::<StatefulSet>(o)
                .unwrap()
                .spec
                .unwrap()
                .template,
        )),
        "DaemonSet" => t(Some(
            serde_json::from_value::<DaemonSet>(o)
                .unwrap()
                .spec
                .unwrap()
                .template,
        )),
        "Job" => t(Some(
            serde_json::from_value::<Job>(o)
                .unwrap()
                .spec
                .unwrap()
                .template,
        )),
        "CronJob" => t(Some(
            serde_json::from_value::<CronJob>(o)
                .unwrap()
                .spec
                .unwrap()
                .job_template
                .spec
                .unwrap()
                .template,
        )),
        "ReplicationController" => t(serde_json::from_value::<ReplicationController>(o)
            .unwrap()
            .spec
            .unwrap()
            .template),
        other => panic!("unexpected kind {other}"),
    }
}

const WORKLOADS: &[(&str, &str, &str)] = &[
    ("pod-create.json", "Pod", "/spec"),
    ("pod-ephemeralcontainers-update.json", "Pod", "/spec"),
    (
        "deployment-create.json",
        "Deployment",
        "/spec/template/spec",
    ),
    (
        "replicaset-create.json",
        "ReplicaSet",
        "/spec/template/spec",
    ),
    (
        "statefulset-create.json",
        "StatefulSet",
        "/spec/template/spec",
    ),
    ("daemonset-create.json", "DaemonSet", "/spec/template/spec"),
    ("job-create.json", "Job", "/spec/template/spec"),
    (
        "cronjob-create.json",
        "CronJob",
        "/spec/jobTemplate/spec/template/spec",
    ),
    (
        "replicationcontroller-create.json",
        "ReplicationController",
        "/spec/template/spec",
    ),
];

#[test]
fn every_workload_fixture_is_typed_and_its_images_are_found_at_their_paths() {
    for (file, kind, spec_ptr) in WORKLOADS {
        let (raw, req) = request(file);
        assert_eq!(req.kind.kind, *kind, "{file}");
        let object = &raw["request"]["object"];
        let typed = typed_images(&typed_spec(kind, object));
        assert!(!typed.is_empty(), "{file}");
        let Scope::Check(sites) = scope(&req) else {
            panic!("{file} is not checked")
        };
        let found: Vec<String> = sites.iter().map(|s| s.image.clone()).collect();
        assert_eq!(found, typed, "{file}");
        for s in &sites {
            assert!(s.pointer.starts_with(spec_ptr), "{file}: {}", s.pointer);
            assert_eq!(
                object.pointer(&s.pointer).unwrap(),
                &Value::String(s.image.clone())
            );
        }
    }
}

#[test]
fn other_kinds_and_subresources_are_ignored() {
    let (raw, req) = request("configmap-create.json");
    serde_json::from_value::<ConfigMap>(raw["request"]["object"].clone()).unwrap();
    assert_eq!(scope(&req), Scope::Ignore("other_kind"));
    let (raw, req) = request("pod-status-update.json");
    serde_json::from_value::<Pod>(raw["request"]["object"].clone()).unwrap();
    assert_eq!(scope(&req), Scope::Ignore("subresource"));
    let mut v = common::fixture("pod-create.json");
    v["request"]["operation"] = Value::from("DELETE");
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(v).unwrap();
    let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
    assert_eq!(scope(&req), Scope::Ignore("other_operation"));
}
