//! Choosing a Burn device from the backends compiled into this build.

use burn::tensor::Device;

/// The backends this build was compiled with, fastest first for training on this kind of
/// machine: `cuda`, `wgpu`, `flex`, `ndarray`.
#[must_use]
pub fn compiled_backends() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "flex") {
        names.push("flex");
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names
}

/// Error for a backend name this build cannot provide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "backend `{name}` is not compiled in: rebuild with `--features {name}` (this build has: {available})"
)]
pub struct UnknownBackend {
    /// The name that was asked for.
    pub name: String,
    /// Comma-separated list of what is available.
    pub available: String,
}

/// A device of the named backend (`flex`, `ndarray`, `wgpu`, `cuda`).
///
/// # Errors
/// [`UnknownBackend`], naming the Cargo feature to enable, when the backend is not compiled in.
pub fn device(name: &str) -> Result<Device, UnknownBackend> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        _ => Err(UnknownBackend {
            name: name.to_owned(),
            available: compiled_backends().join(", "),
        }),
    }
}

/// The named backend's device, or [`default_device`] when no name is given (a command
/// line's optional `--backend`).
///
/// # Errors
/// As [`device`].
pub fn device_or_default(name: Option<&str>) -> Result<Device, UnknownBackend> {
    name.map_or_else(|| Ok(default_device()), device)
}

/// A device of the first backend compiled in, in the order of [`compiled_backends`].
#[must_use]
pub fn default_device() -> Device {
    let first = compiled_backends()[0];
    device(first).expect("compiled_backends lists only backends that `device` accepts")
}

/// How many threads should decode at once on the named backend
/// ([`GenerationConfig::workers`](aurl_sampling::GenerationConfig::workers)): on the CPU
/// backends (`flex`, `ndarray`) the machine's cores — or `RAYON_NUM_THREADS` when it is
/// set, the variable that bounds those backends' own thread pools — and 1 on a GPU, whose
/// kernels are already parallel. `None` is [`default_device`]'s backend.
#[must_use]
pub fn decode_workers(name: Option<&str>) -> usize {
    let name = name.unwrap_or(compiled_backends()[0]);
    if !matches!(name, "flex" | "ndarray") {
        return 1;
    }
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_backend_names_the_feature_to_enable() {
        let err = device("tpu").unwrap_err();
        assert!(err.to_string().contains("--features tpu"), "{err}");
    }

    #[test]
    fn the_default_device_computes() {
        let d = default_device();
        let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0, 3.0], &d);
        let s: f32 = t.sum().into_scalar();
        assert_eq!(s, 6.0);
    }

    #[test]
    fn gpus_decode_on_one_worker_and_cpus_on_at_least_one() {
        assert_eq!(decode_workers(Some("wgpu")), 1);
        assert_eq!(decode_workers(Some("cuda")), 1);
        assert!(decode_workers(Some("flex")) >= 1);
    }
}
