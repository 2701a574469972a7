//! Pods: the Kubernetes pod sandboxes kubelet runs through berth's CRI face, by namespace, with
//! their containers (links to each one's live logs and exec terminal), IP and state.

pub mod list;

pub use list::Pods;
