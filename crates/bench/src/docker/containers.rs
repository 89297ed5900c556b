//! The Docker side of `bench docker`: the hello-rust native executable on
//! the action-proxy image, through the Docker backend
//! ([`wasmwhisk_docker`]) exactly as the pool drives it — `create` (create +
//! start + address + log follower), `/init` with the executable as binary
//! code (OpenWhisk's `native` convention), `/run`, `pause`/`resume`,
//! `destroy`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::daemon::Daemon;
use super::footprint::{self, ProcMemory};
use super::{Interrupt, activation, hello_params};
use wasmwhisk_docker::{ContainerInitError, ContainerSpec, Docker, DockerContainer};
use wasmwhisk_sandbox::action::{InitArgs, SandboxLimits};

/// The kind label of the bench's containers.
const KIND: &str = "native";
/// How long the warm container stays paused before a timed unpause, and
/// idle after it: the daemon's state settles (see [`DockerSide::unpaused`]).
const SETTLE: Duration = Duration::from_millis(50);

/// The Docker handle, the code, and the containers kept between samples.
pub(crate) struct DockerSide {
    docker: Docker,
    image: String,
    /// The native executable: `/init`'s binary code.
    code: Vec<u8>,
    limits: SandboxLimits,
    /// The next container's sandbox id (its name's suffix).
    next_id: u64,
    /// A started container waiting for the next prewarmed sample.
    prewarmed: Option<DockerContainer>,
    /// The initialized container of the warm rows.
    warm: Option<DockerContainer>,
    /// No container is created once set.
    interrupt: Interrupt,
}

impl DockerSide {
    /// Ready to create containers of `image` running `code`.
    pub(crate) fn new(
        docker: Docker,
        image: &str,
        code: Vec<u8>,
        limits: SandboxLimits,
        interrupt: Interrupt,
    ) -> Self {
        DockerSide {
            interrupt,
            docker,
            image: image.to_string(),
            code,
            limits,
            next_id: 1,
            prewarmed: None,
            warm: None,
        }
    }

    /// Creates and starts a container (a stem cell).
    async fn create(&mut self) -> Result<DockerContainer> {
        self.interrupt.check()?;
        let spec = ContainerSpec {
            sandbox_id: self.next_id,
            kind: KIND.to_string(),
            image: self.image.clone(),
            memory_mb: self.limits.memory_mb,
        };
        self.next_id += 1;
        Ok(self.docker.create(spec).await?)
    }

    /// `/init` with the native executable.
    async fn init(&self, container: &mut DockerContainer) -> Result<()> {
        let args = InitArgs {
            name: "hello-rust".into(),
            main: "main".into(),
            code: self.code.clone(),
            binary: true,
            env: Vec::new(),
        };
        match container.init(args, self.limits).await {
            Ok(_) => Ok(()),
            Err(ContainerInitError::Failed(failure)) => bail!(
                "/init of hello-rust failed: {} (logs: {:?})",
                failure.response.result,
                failure.logs
            ),
            Err(ContainerInitError::Reschedule(why)) => bail!("/init of hello-rust: {why}"),
        }
    }

    /// `/run` with `{"name": "bench"}`; anything but success is an error.
    async fn run(&self, container: &mut DockerContainer) -> Result<()> {
        let report = container
            .run(activation(), hello_params(), self.limits)
            .await?;
        if !report.response.is_success() {
            bail!(
                "/run of hello-rust failed: {} (logs: {:?})",
                report.response.result,
                report.logs
            );
        }
        Ok(())
    }

    /// Docker cold: create + start + `/init` + `/run`; then removed (not timed).
    pub(crate) async fn cold(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let mut container = self.create().await?;
        let outcome = async {
            self.init(&mut container).await?;
            self.run(&mut container).await
        }
        .await;
        let elapsed = started.elapsed();
        container.destroy().await;
        outcome.map(|()| elapsed)
    }

    /// Starts the container the next prewarmed sample initializes.
    pub(crate) async fn prewarm(&mut self) -> Result<()> {
        if self.prewarmed.is_none() {
            self.prewarmed = Some(self.create().await?);
        }
        Ok(())
    }

    /// Docker prewarmed: `/init` + `/run` on a container started earlier;
    /// then removed (not timed).
    pub(crate) async fn prewarmed(&mut self) -> Result<Duration> {
        self.prewarm().await?;
        let mut container = self.prewarmed.take().context("no prewarmed container")?;
        let started = Instant::now();
        let outcome = async {
            self.init(&mut container).await?;
            self.run(&mut container).await
        }
        .await;
        let elapsed = started.elapsed();
        container.destroy().await;
        outcome.map(|()| elapsed)
    }

    /// Makes the warm container (not timed).
    pub(crate) async fn start_warm(&mut self) -> Result<()> {
        if self.warm.is_none() {
            let mut container = self.create().await?;
            let ready = async {
                self.init(&mut container).await?;
                self.run(&mut container).await
            }
            .await;
            match ready {
                Ok(()) => self.warm = Some(container),
                Err(error) => {
                    container.destroy().await;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Docker warm: `/run` on the warm container.
    pub(crate) async fn warm(&mut self) -> Result<Duration> {
        let mut container = self.warm.take().context("no warm container")?;
        let started = Instant::now();
        let outcome = self.run(&mut container).await;
        let elapsed = started.elapsed();
        self.warm = Some(container);
        outcome.map(|()| elapsed)
    }

    /// Docker warm after pause: the warm container is paused and left
    /// paused for a moment (not timed), then `unpause` + `/run`.
    ///
    /// Docker 20.10 sets a container's paused flag both when it answers
    /// `pause`/`unpause` and again when containerd's event for it arrives,
    /// which under load can be after the next call: back-to-back cycles then
    /// fail with "is already paused" (or "is not paused"). The pauses are
    /// spaced by [`SETTLE`], and a failed sample is retried once after
    /// thawing the container.
    pub(crate) async fn unpaused(&mut self) -> Result<Duration> {
        let mut container = self.warm.take().context("no warm container")?;
        let mut outcome = self.unpaused_once(&mut container).await;
        if outcome.is_err() && !container.is_retired() {
            tokio::time::sleep(SETTLE * 4).await;
            // Thaw it in case it is frozen; it may as well not be.
            let _ = container.resume().await;
            tokio::time::sleep(SETTLE).await;
            outcome = self.unpaused_once(&mut container).await;
        }
        self.warm = Some(container);
        outcome
    }

    async fn unpaused_once(&self, container: &mut DockerContainer) -> Result<Duration> {
        container.pause().await?;
        tokio::time::sleep(SETTLE).await;
        let started = Instant::now();
        container.resume().await?;
        self.run(container).await?;
        let elapsed = started.elapsed();
        tokio::time::sleep(SETTLE).await;
        Ok(elapsed)
    }

    /// Density: starts `count` containers, initializes each and runs it
    /// once, leaves them idle for `settle`, then reads what each costs.
    /// `tick` is called after each container is ready.
    pub(crate) async fn density(
        &mut self,
        daemon: &Daemon,
        count: usize,
        settle: Duration,
        mut tick: impl FnMut(usize),
    ) -> Result<DockerDensity> {
        let daemons_before = footprint::daemons_memory();
        let mut live = Vec::with_capacity(count);
        let started = Instant::now();
        let outcome = async {
            for i in 0..count {
                let mut container = self.create().await?;
                let ready = async {
                    self.init(&mut container).await?;
                    self.run(&mut container).await
                }
                .await;
                live.push(container);
                ready?;
                tick(i + 1);
            }
            let made_in = started.elapsed();
            tokio::time::sleep(settle).await;
            let processes = footprint::processes();
            let mut per = Vec::with_capacity(live.len());
            for container in &live {
                let memory = daemon
                    .memory(container.id())
                    .await
                    .with_context(|| format!("reading the memory of {}", container.name()))?;
                let shim = footprint::shim_of(&processes, container.id())
                    .and_then(|p| footprint::memory_of(p.pid))
                    .with_context(|| {
                        format!(
                            "no containerd-shim process of {} in /proc: the bench must run \
                             on the Docker host",
                            container.name()
                        )
                    })?;
                let ip = ip_of(container.address());
                let proxies = footprint::proxies_of(&processes, ip)
                    .into_iter()
                    .filter_map(|p| footprint::memory_of(p.pid))
                    .fold(ProcMemory::default(), |a, b| a + b);
                per.push(ContainerMemory {
                    cgroup_usage: memory.usage,
                    cgroup_without_cache: memory.without_cache,
                    shim,
                    proxies,
                });
            }
            Ok::<_, anyhow::Error>((per, made_in))
        }
        .await;
        let daemons_after = footprint::daemons_memory();
        for container in live {
            container.destroy().await;
        }
        let (per, made_in) = outcome?;
        Ok(DockerDensity {
            per,
            made_in,
            daemons_before,
            daemons_after,
        })
    }

    /// Removes the containers it keeps.
    pub(crate) async fn shutdown(&mut self) {
        for container in [self.prewarmed.take(), self.warm.take()]
            .into_iter()
            .flatten()
        {
            container.destroy().await;
        }
    }
}

/// `172.17.0.3` of `http://172.17.0.3:8080`.
fn ip_of(address: &str) -> &str {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    rest.rsplit_once(':').map_or(rest, |(host, _)| host)
}

/// What one idle container costs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContainerMemory {
    /// Its cgroup's memory usage, bytes (page cache included).
    pub cgroup_usage: u64,
    /// The same less inactive page cache (what `docker stats` shows), bytes.
    pub cgroup_without_cache: u64,
    /// Its `containerd-shim` process.
    pub shim: ProcMemory,
    /// Its `docker-proxy` processes, if a port is published (else zero).
    pub proxies: ProcMemory,
}

/// What the Docker density row measured.
#[derive(Clone, Debug)]
pub(crate) struct DockerDensity {
    /// Each sampled container.
    pub per: Vec<ContainerMemory>,
    /// How long starting, initializing and running them took.
    pub made_in: Duration,
    /// `dockerd` + `containerd` before the first was created.
    pub daemons_before: ProcMemory,
    /// And with all of them idle.
    pub daemons_after: ProcMemory,
}

impl DockerDensity {
    fn mean(&self, f: impl Fn(&ContainerMemory) -> f64) -> f64 {
        self.per.iter().map(f).sum::<f64>() / self.per.len().max(1) as f64
    }

    /// Mean cgroup usage without inactive page cache, KiB.
    pub(crate) fn cgroup_kib(&self) -> f64 {
        self.mean(|m| m.cgroup_without_cache as f64 / 1024.0)
    }

    /// Mean cgroup usage with page cache, KiB.
    pub(crate) fn cgroup_usage_kib(&self) -> f64 {
        self.mean(|m| m.cgroup_usage as f64 / 1024.0)
    }

    /// Mean shim (and docker-proxy) RSS, KiB.
    pub(crate) fn shim_rss_kib(&self) -> f64 {
        self.mean(|m| (m.shim.rss_kib + m.proxies.rss_kib) as f64)
    }

    /// Mean shim (and docker-proxy) PSS, KiB.
    pub(crate) fn shim_pss_kib(&self) -> f64 {
        self.mean(|m| (m.shim.pss_kib + m.proxies.pss_kib) as f64)
    }

    /// Mean shim (and docker-proxy) USS — the pages only it maps, what
    /// one more container adds — KiB.
    pub(crate) fn shim_uss_kib(&self) -> f64 {
        self.mean(|m| (m.shim.uss_kib + m.proxies.uss_kib) as f64)
    }

    /// The daemons' RSS growth per sampled container, KiB (may be negative:
    /// Go returns memory in steps).
    pub(crate) fn daemons_kib(&self) -> f64 {
        (self.daemons_after.rss_kib as f64 - self.daemons_before.rss_kib as f64)
            / self.per.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_is_taken_from_the_address() {
        assert_eq!(ip_of("http://172.17.0.3:8080"), "172.17.0.3");
        assert_eq!(ip_of("172.17.0.3:8080"), "172.17.0.3");
        assert_eq!(ip_of("http://host"), "host");
    }

    #[test]
    fn means_are_per_container() {
        let one = |cgroup: u64, rss: u64, pss: u64| ContainerMemory {
            cgroup_usage: cgroup + 1024,
            cgroup_without_cache: cgroup,
            shim: ProcMemory {
                rss_kib: rss,
                pss_kib: pss,
                uss_kib: pss / 2,
            },
            proxies: ProcMemory::default(),
        };
        let d = DockerDensity {
            per: vec![one(1024 * 100, 10, 4), one(1024 * 300, 30, 6)],
            made_in: Duration::ZERO,
            daemons_before: ProcMemory {
                rss_kib: 1000,
                ..ProcMemory::default()
            },
            daemons_after: ProcMemory {
                rss_kib: 900,
                ..ProcMemory::default()
            },
        };
        assert_eq!(d.cgroup_kib(), 200.0);
        assert_eq!(d.cgroup_usage_kib(), 201.0);
        assert_eq!(d.shim_rss_kib(), 20.0);
        assert_eq!(d.shim_pss_kib(), 5.0);
        assert_eq!(d.shim_uss_kib(), 2.5);
        assert_eq!(d.daemons_kib(), -50.0);
    }
}
