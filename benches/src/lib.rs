//! Benchmarks shared by the criterion groups and the `compare` program: the contenders (our
//! allocators and the peers, all driven through the same `allocator_api2` interface) and the
//! workloads of `BENCHMARKS.md`, written once and generic over the allocator.

pub mod contenders;
pub mod measure;
pub mod workloads;

pub use contenders::{Contender, Kind, CONTENDERS};
pub use workloads::{Scale, Workload, WORKLOADS};
