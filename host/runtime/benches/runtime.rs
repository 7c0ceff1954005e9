//! Runtime benchmark (`make bench`): the figures of the spine issue, each beside its baseline
//! measured in the same process.
//!
//! 1. Per-run overhead of a trivial plugin (fresh store, instantiate from the pre-instantiated
//!    component, call `run`, drop) through `Runtime::run` with fuel, memory cap and deadline on,
//!    beside bare wasmtime doing the same with the same pooling allocator.
//! 2. Cold start of a cached plugin: a runtime that has never seen the plugin loads its compiled
//!    artifact from disk and pre-instantiates it.
//! 3. Fuel metering cost: a compute-heavy run with fuel on versus off.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_runtime::__bench::{Failure, WitRunContext};
use mc_runtime::{Grants, Limits, MemoryKv, RunContext, RunRequest, Runtime, RuntimeConfig, Services};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

const RUNS: usize = 10_000;
const WARMUP: usize = 500;
const COLD_STARTS: usize = 30;
const COMPUTE_ITERATIONS: u64 = 200_000_000;
const COMPUTE_REPS: usize = 5;
const MAX_INSTANCES: u32 = 16;

fn plugin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("wasm32-wasip2/plugin").join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} is missing: run `make plugins` first", p.display());
    p
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.50), percentile(&samples, 0.99))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn request(input: &str, limits: Limits, services: &Services, grants: &Arc<Grants>) -> RunRequest {
    RunRequest {
        input: input.to_string(),
        context: RunContext {
            tenant: "bench".into(),
            agent: "noop".into(),
            automation: None,
            run_id: "bench".into(),
            root_run_id: None,
            attempt: 1,
            trigger: "bench".into(),
        },
        grants: grants.clone(),
        limits,
        services: services.clone(),
        cancel: None,
    }
}

/// The store data of the bare baseline: WASI and wasi:http, which the component imports; the
/// Mission Control imports are stubbed as traps (the trivial plugin calls none of them).
struct Bare {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiHttpView for Bare {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Defines the contract's own imports (and the keyvalue/config ones) as functions that fail: the
/// bare baseline runs plugins that do not call them. (`define_unknown_imports_as_traps` would also
/// redefine the `wasi:io` versions the component names and break their resource types.)
fn stub_contract_imports(linker: &mut Linker<Bare>, engine: &Engine, component: &Component) {
    use wasmtime::component::ResourceType;
    use wasmtime::component::types::ComponentItem;
    for (name, item) in component.component_type().imports(engine) {
        if !["mission:control/", "wasi:keyvalue/", "wasi:config/"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut li = linker.instance(name).unwrap();
        // Resources first: the functions' types refer to them.
        for (export, item) in instance.exports(engine) {
            if let ComponentItem::Resource(_) = item.ty {
                li.resource(export, ResourceType::host::<()>(), |_, _| Ok(())).unwrap();
            }
        }
        for (export, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                li.func_new(export, |_, _, _, _| {
                    Err(wasmtime::format_err!("not linked in the bare baseline"))
                })
                .unwrap();
            }
        }
    }
}

struct BareWasmtime {
    engine: Engine,
    pre: InstancePre<Bare>,
    run: ComponentExportIndex,
    fuel: bool,
}

impl BareWasmtime {
    fn new(path: &PathBuf, fuel: bool) -> BareWasmtime {
        // The same pooling allocator as the runtime's (slot counts, batched resets, resident
        // pages), so that the comparison is of what the runtime adds per run.
        let pool = mc_runtime::pooling_config(MAX_INSTANCES, 1 << 30);
        let mut config = Config::new();
        config
            .consume_fuel(fuel)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).unwrap();
        let component = Component::from_file(&engine, path).unwrap();
        let mut linker: Linker<Bare> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        stub_contract_imports(&mut linker, &engine, &component);
        let pre = linker.instantiate_pre(&component).unwrap();
        let iface = component.get_export_index(None, mc_runtime::HANDLER_EXPORT).unwrap();
        let run = component.get_export_index(Some(&iface), "run").unwrap();
        BareWasmtime { engine, pre, run, fuel }
    }

    async fn call(&self, input: &str) -> Result<String, Failure> {
        let mut store = Store::new(
            &self.engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        );
        if self.fuel {
            store.set_fuel(u64::MAX).unwrap();
        }
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        let func = instance
            .get_typed_func::<(&str, WitRunContext), (Result<String, Failure>,)>(&mut store, &self.run)
            .unwrap();
        let ctx = WitRunContext {
            tenant: "bench".into(),
            agent: "noop".into(),
            automation: None,
            run_id: "bench".into(),
            attempt: 1,
            trigger: "bench".into(),
            deadline_ms: 60_000,
        };
        let (result,) = func.call_async(&mut store, (input, ctx)).await.unwrap();
        result
    }
}

async fn overhead(rt: &Runtime) {
    let noop_path = plugin("noop");
    let noop = rt.load_file(&noop_path).unwrap();
    let services = Services {
        ai: Arc::new(mc_ai::OfflineProvider),
        kv: Arc::new(MemoryKv::new()),
        delegator: None,
        registries: None,
        approvals: None,
    };
    let grants = Arc::new(Grants {
        models: vec!["offline".into()],
        kv_bucket: Some("tenant:bench".into()),
        ..Grants::default()
    });
    let bare = BareWasmtime::new(&noop_path, false);

    // Interleave the two so that machine noise hits both alike.
    let (mut ours, mut base) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for i in 0..WARMUP + RUNS {
        let t = Instant::now();
        let o = rt
            .run(&noop, request("{}", Limits::default(), &services, &grants))
            .await
            .unwrap();
        let d = t.elapsed();
        assert!(o.result.is_ok());
        let t = Instant::now();
        assert!(bare.call("{}").await.is_ok());
        let b = t.elapsed();
        if i >= WARMUP {
            ours.push(d);
            base.push(b);
        }
    }
    let (o50, o99) = summary(ours);
    let (b50, b99) = summary(base);
    println!("## Per-run overhead, trivial plugin ({RUNS} runs each, interleaved)");
    println!("| configuration | p50 µs | p99 µs |");
    println!("|---|---|---|");
    println!(
        "| bare wasmtime (pooling, no fuel, no deadline) | {:.1} | {:.1} |",
        us(b50),
        us(b99)
    );
    println!(
        "| Runtime::run (pooling, fuel, memory cap, deadline, grants) | {:.1} | {:.1} |",
        us(o50),
        us(o99)
    );
    println!(
        "| ratio (goal ≤ 1.3) | {:.2} | {:.2} |",
        us(o50) / us(b50),
        us(o99) / us(b99)
    );
    println!();
}

fn cold_start(cache: &std::path::Path) {
    println!("## Cold start of a cached plugin ({COLD_STARTS} loads each, disk cache warm, fresh runtime each time)");
    println!("| plugin | size KiB | compile (no cache) ms | cold start p50 ms | cold start p99 ms |");
    println!("|---|---|---|---|---|");
    for name in ["noop", "content_writer", "analytics"] {
        let path = plugin(name);
        let size = std::fs::metadata(&path).unwrap().len() / 1024;
        let uncached = Runtime::new(RuntimeConfig {
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let t = Instant::now();
        uncached.load_file(&path).unwrap();
        let compile = t.elapsed();
        // Prime the disk cache.
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.to_path_buf()),
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap()
        .load_file(&path)
        .unwrap();
        let mut samples = Vec::new();
        for _ in 0..COLD_STARTS {
            let rt = Runtime::new(RuntimeConfig {
                cache_dir: Some(cache.to_path_buf()),
                max_instances: 4,
                ..RuntimeConfig::default()
            })
            .unwrap();
            let t = Instant::now();
            let p = rt.load_file(&path).unwrap();
            samples.push(t.elapsed());
            assert_eq!(p.source(), mc_runtime::CacheOutcome::Hit);
        }
        let (p50, p99) = summary(samples);
        println!(
            "| {name} | {size} | {:.1} | {:.2} | {:.2} |",
            compile.as_secs_f64() * 1e3,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
    println!();
}

async fn fuel_cost(rt: &Runtime) {
    let path = plugin("hostile");
    let hostile = rt.load_file(&path).unwrap();
    let services = Services {
        ai: Arc::new(mc_ai::OfflineProvider),
        kv: Arc::new(MemoryKv::new()),
        delegator: None,
        registries: None,
        approvals: None,
    };
    let grants = Arc::new(Grants::default());
    let input = format!(r#"{{"mode":"compute","iterations":{COMPUTE_ITERATIONS}}}"#);
    let bare_off = BareWasmtime::new(&path, false);
    let bare_on = BareWasmtime::new(&path, true);
    let (mut ours, mut off, mut on) = (Vec::new(), Vec::new(), Vec::new());
    let mut fuel = 0;
    for _ in 0..COMPUTE_REPS {
        let t = Instant::now();
        let o = rt
            .run(
                &hostile,
                request(
                    &input,
                    Limits {
                        fuel: mc_runtime::MAX_FUEL,
                        deadline: Duration::from_secs(600),
                        ..Limits::default()
                    },
                    &services,
                    &grants,
                ),
            )
            .await
            .unwrap();
        ours.push(t.elapsed());
        assert!(o.result.is_ok(), "{:?}", o.result);
        fuel = o.usage.fuel_consumed;
        let t = Instant::now();
        bare_off.call(&input).await.unwrap();
        off.push(t.elapsed());
        let t = Instant::now();
        bare_on.call(&input).await.unwrap();
        on.push(t.elapsed());
    }
    let (ours, _) = summary(ours);
    let (off, _) = summary(off);
    let (on, _) = summary(on);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "## Fuel metering cost (compute-heavy run, {COMPUTE_ITERATIONS} iterations, {fuel} fuel units, median of {COMPUTE_REPS})"
    );
    println!("| configuration | ms | ratio to fuel off |");
    println!("|---|---|---|");
    println!("| bare wasmtime, fuel off | {:.1} | 1.00 |", ms(off));
    println!("| bare wasmtime, fuel on | {:.1} | {:.2} |", ms(on), ms(on) / ms(off));
    println!(
        "| Runtime::run (fuel on, epoch deadline) | {:.1} | {:.2} |",
        ms(ours),
        ms(ours) / ms(off)
    );
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Either way
    // the benchmark runs in full only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("runtime benchmark: run with `cargo bench -p mc-runtime --bench runtime` (or `make bench`)");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: MAX_INSTANCES,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("# mc-runtime benchmark\n");
    tokio.block_on(overhead(&rt));
    cold_start(cache.path());
    tokio.block_on(fuel_cost(&rt));
}
