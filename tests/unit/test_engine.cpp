// The engine against fake VMs and a fake agent: for every step of a
// migration, a failure injected there must leave the source running or
// resumed, the checkpoint kept (unless lazy), the destination torn down and
// a clear error. Milliseconds, no QEMU.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <algorithm>

#include <filesystem>

#include "core/checkpoint_archive.hpp"
#include "core/checkpoint_store.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "fakes.hpp"
#include "temp_dir.hpp"
#include "vm/data_disk.hpp"
#include "vm/engine/checkpoint.hpp"
#include "vm/engine/cycle.hpp"
#include "vm/engine/migrate.hpp"

namespace fs = std::filesystem;
using namespace kcr;

namespace {

const std::vector<std::string> k_counter = {"kcr-scenario", "counter", "--interval-ms", "100"};

struct World {
  test::TempDir tmp;
  std::string root = tmp.path();
  core::Config cfg;
  test::FakeVms vms;
  std::vector<std::string> said;
  engine::Env env{cfg, vms, [this](const std::string& l) { said.push_back(l); }};

  World() {
    cfg.data_dir = root + "/data";
    cfg.state_dir = root + "/state";
    cfg.cache_dir = root + "/cache";
    env.settle = std::chrono::milliseconds(0);
    auto& src = vms.add("src");
    src.workloads["w"] = {k_counter, 7, "running", false};
  }

  test::FakeGuest& src() { return vms.guest("src"); }
  // A checkpoint of the source's workload as "c".
  static engine::CheckpointRequest checkpoint_c() {
    engine::CheckpointRequest req;
    req.vm = "src";
    req.workload = "w";
    req.name = "c";
    return req;
  }
  // Gives VM its data disks, as QemuBackend::launch makes them, in a state directory.
  std::string give_disks(const std::string& vm) {
    std::string dir = root + "/vm-" + vm;
    fs::create_directories(dir);
    vm::create_data_disks(dir, 1);
    vms.infos[vm].dir = dir;
    vms.guest(vm).disk_dir = dir;
    vms.guest(vm).disk_bytes = vm::data_disk_bytes(1);
    return dir;
  }
  // Blocks of a disk file still allocated on the host (0: all given back).
  static long long blocks(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_blocks) : -1;
  }
  std::string src_state() {
    auto it = src().workloads.find("w");
    return it == src().workloads.end() ? "gone" : it->second.state;
  }
  std::vector<std::string> checkpoints() {
    std::vector<std::string> names;
    for (const auto& m : core::CheckpointStore(cfg.data_dir).list()) names.push_back(m.name);
    return names;
  }
  bool no_partial_left() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cfg.data_dir + "/checkpoints", ec)) {
      if (e.path().filename().string().rfind(".partial", 0) == 0) return false;
    }
    return true;
  }
  engine::MigrateRequest request() {
    engine::MigrateRequest r;
    r.vm = "src";
    r.workload = "w";
    r.name = "mig";
    return r;
  }
  // Runs the migration expecting a failure; returns message + hint.
  std::string failed(const engine::MigrateRequest& r) {
    try {
      engine::migrate(env, r);
    } catch (const Error& e) {
      return std::string(e.what()) + "\nhint: " + e.hint();
    }
    ADD_FAILURE() << "the migration succeeded";
    return {};
  }
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

bool seen(const test::FakeGuest& g, const std::string& kind) {
  return std::find(g.seen.begin(), g.seen.end(), kind) != g.seen.end();
}

}  // namespace

TEST(EngineMigrate, PlainMoveEndsTheSourceAndRemovesTheCheckpoint) {
  World w;
  auto r = engine::migrate(w.env, w.request());
  EXPECT_EQ(r.to, "src-m1");
  EXPECT_TRUE(r.fresh_vm);
  EXPECT_EQ(r.mode, "plain");
  EXPECT_TRUE(r.verdict.survived);
  EXPECT_EQ(w.src_state(), "gone");
  EXPECT_EQ(w.vms.guest("src-m1").workloads.at("w").state, "running");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.vms.stopped.empty());
}

TEST(EngineMigrate, KeepSourceLeavesBothRunningAndKeepCheckpointKeepsIt) {
  World w;
  auto req = w.request();
  req.keep_source = true;
  req.keep_checkpoint = true;
  auto r = engine::migrate(w.env, req);
  EXPECT_FALSE(r.source_ended);
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_EQ(w.checkpoints(), (std::vector<std::string>{"mig"}));
  EXPECT_EQ(r.checkpoint, "mig");
}

TEST(EngineMigrate, DestinationThatCannotBootTouchesNothing) {
  World w;
  w.vms.fail_start = "QEMU failed to start";
  auto err = w.failed(w.request());
  EXPECT_TRUE(contains(err, "QEMU failed to start"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_FALSE(seen(w.src(), "checkpoint"));
  EXPECT_TRUE(w.checkpoints().empty());
}

TEST(EngineMigrate, DifferentGuestIsRefusedBeforeTheFreezeAndTheFreshVmStopped) {
  World w;
  auto& dst = w.vms.add("dst");
  dst.kernel = "6.1.192-kcr";
  auto req = w.request();
  req.to = "dst";
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "runs a different guest")) << err;
  EXPECT_TRUE(contains(err, "--force"));
  EXPECT_FALSE(seen(w.src(), "checkpoint"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.vms.has("dst"));  // a VM of the user's is never stopped
}

TEST(EngineMigrate, NameTakenInTheDestinationIsRefusedAndTheFreshVmStopped) {
  World w;
  // The fresh VM comes up already holding a workload of that name.
  w.vms.fresh.workloads["w"] = {{"sh"}, 3, "running", false};
  auto err = w.failed(w.request());
  EXPECT_TRUE(contains(err, "already has a workload named 'w'"));
  EXPECT_FALSE(seen(w.src(), "checkpoint"));
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, KeepCheckpointToAnotherHostKeepsAnArchiveThereThatImports) {
  World w;
  w.vms.backend.other_host_dir = w.root + "/far";
  fs::create_directories(w.vms.backend.other_host_dir);
  auto req = w.request();
  req.keep_checkpoint = true;
  auto r = engine::migrate(w.env, req);
  EXPECT_EQ(r.checkpoint, "mig");
  EXPECT_EQ(r.checkpoint_on_host, "kept as checkpoint-mig.tar.zst");
  EXPECT_TRUE(r.warnings.empty());
  // What the other host holds is the whole checkpoint, as another store takes it.
  const std::string archive = w.vms.backend.other_host_dir + "/checkpoint-mig.tar.zst";
  core::CheckpointStore far(w.root + "/far-data");
  auto m = core::import_checkpoint(far, archive);
  EXPECT_EQ(m.name, "mig");
  EXPECT_EQ(m.files.size(), core::CheckpointStore(w.cfg.data_dir).load("mig").files.size());
}

TEST(EngineMigrate, ArchiveThatCannotReachTheOtherHostIsAWarningAndTheMoveStands) {
  World w;
  w.vms.backend.other_host_dir = w.root + "/far";
  w.vms.backend.keep_fails = "cannot connect to libvirt at 'qemu+tcp://host2/system'";
  auto req = w.request();
  req.keep_checkpoint = true;
  auto r = engine::migrate(w.env, req);
  EXPECT_TRUE(r.verdict.survived);
  EXPECT_TRUE(r.checkpoint_on_host.empty());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_TRUE(contains(r.warnings[0], "kept in this host's store only: cannot connect"))
      << r.warnings[0];
  EXPECT_EQ(w.checkpoints(), (std::vector<std::string>{"mig"}));
}

TEST(EngineMigrate, WithoutKeepCheckpointNothingGoesToTheOtherHost) {
  World w;
  w.vms.backend.other_host_dir = w.root + "/far";
  fs::create_directories(w.vms.backend.other_host_dir);
  auto r = engine::migrate(w.env, w.request());
  EXPECT_TRUE(r.checkpoint_on_host.empty());
  EXPECT_TRUE(fs::is_empty(w.vms.backend.other_host_dir));
}

TEST(EngineMigrate, ToConnectBootsTheFreshVmOnThatLibvirtDaemon) {
  World w;
  auto req = w.request();
  req.to_connect = "qemu+tcp://host2/system";
  auto r = engine::migrate(w.env, req);
  EXPECT_TRUE(r.fresh_vm);
  EXPECT_EQ(w.vms.infos.at("src-m1").backend, "libvirt");
  EXPECT_EQ(w.vms.infos.at("src-m1").connect, "qemu+tcp://host2/system");
  EXPECT_EQ(w.vms.guest("src-m1").workloads.at("w").state, "running");
}

TEST(EngineMigrate, ToConnectOtherThanARunningDestinationsIsRefusedBeforeTheFreeze) {
  World w;
  w.vms.add("dst");
  w.vms.infos["dst"].backend = "libvirt";
  w.vms.infos["dst"].connect = "qemu:///system";
  auto req = w.request();
  req.to = "dst";
  req.to_connect = "qemu+tcp://host2/system";
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "VM 'dst' runs on qemu:///system, not on qemu+tcp://host2/system"))
      << err;
  EXPECT_FALSE(seen(w.src(), "checkpoint"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.vms.has("dst"));
}

TEST(EngineMigrate, LazyPagesToAnotherHostIsRefusedBeforeAnythingStarts) {
  World w;
  auto req = w.request();
  req.lazy_pages = true;
  req.to_connect = "qemu+ssh://host2/system";
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "--lazy-pages cannot reach a VM on another host")) << err;
  EXPECT_TRUE(w.vms.started.empty());
  EXPECT_EQ(w.src_state(), "running");
}

TEST(EngineMigrate, MissingMemoryTrackingRefusesPreCopyBeforeAnythingStarts) {
  World w;
  w.src().features_missing.insert("mem_dirty_track");
  auto req = w.request();
  req.pre_dumps = 2;
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "mem_dirty_track"));
  EXPECT_TRUE(w.vms.started.empty());
  EXPECT_EQ(w.src_state(), "running");
}

TEST(EngineMigrate, FailedPreDumpRoundLeavesTheSourceRunningAndNothingBehind) {
  World w;
  w.src().fail_at["pre-dump"] = 2;
  auto req = w.request();
  req.pre_dumps = 2;
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "injected failure of pre-dump")) << err;
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.no_partial_left());
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, FailedStagingOfAPreDumpRoundLeavesTheSourceRunning) {
  World w;
  auto req = w.request();
  req.pre_dumps = 1;
  // The destination, a running VM of the user's, refuses the first staged file.
  auto& dst = w.vms.add("dst");
  dst.fail_at["put_file"] = 2;  // one file of the round is staged already
  req.to = "dst";
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "injected failure of put_file")) << err;
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.vms.guest("dst").staging.empty());
  EXPECT_TRUE(w.vms.stopped.empty());
}

TEST(EngineMigrate, FailedFinalDumpLeavesTheSourceRunningAndStoresNothing) {
  World w;
  w.src().fail_at["checkpoint"] = 1;
  auto err = w.failed(w.request());
  EXPECT_TRUE(contains(err, "checkpoint of workload 'w' in VM 'src' failed")) << err;
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.no_partial_left());
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, FailedRestoreResumesTheSourceAndKeepsTheCheckpoint) {
  World w;
  w.vms.fresh.fail_at["restore"] = 1;
  auto err = w.failed(w.request());
  EXPECT_TRUE(contains(err, "migration of workload 'w' failed")) << err;
  EXPECT_TRUE(contains(err, "the source workload is not lost: it keeps running in VM 'src'"));
  EXPECT_TRUE(contains(err, "checkpoint 'mig' stays in the store"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(seen(w.src(), "kill 18 w"));
  ASSERT_EQ(w.checkpoints(), (std::vector<std::string>{"mig"}));
  core::CheckpointStore store(w.cfg.data_dir);
  EXPECT_NO_THROW(store.verify(store.load("mig")));
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, DestinationDyingMidRestoreResumesTheSourceAndStopsTheFreshVm) {
  World w;
  w.vms.fresh.die_at["restore"] = 1;
  auto err = w.failed(w.request());
  EXPECT_TRUE(contains(err, "the source workload is not lost")) << err;
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_EQ(w.checkpoints(), (std::vector<std::string>{"mig"}));
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, LazyMoveLinksTheVmsAndLeavesNoCheckpoint) {
  World w;
  auto req = w.request();
  req.lazy_pages = true;
  w.src().lazy_waits = 3;
  auto r = engine::migrate(w.env, req);
  EXPECT_EQ(r.mode, "post-copy");
  ASSERT_EQ(w.vms.backend.links.size(), 1u);
  EXPECT_EQ(w.vms.backend.links[0], (std::pair<std::string, std::string>{"src", "src-m1"}));
  EXPECT_EQ(w.src_state(), "gone");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(r.checkpoint.empty());
}

TEST(EngineMigrate, LazyRestoreFailureEndsThePageServerResumesTheSourceAndDropsTheCheckpoint) {
  World w;
  w.vms.fresh.fail_at["restore"] = 1;
  auto req = w.request();
  req.lazy_pages = true;
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "the workload runs on in VM 'src'")) << err;
  EXPECT_FALSE(contains(err, "stays in the store"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_FALSE(w.src().lazy_server);
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, LazyPageServerFailureKillsTheCopyAndResumesTheSource) {
  World w;
  w.src().fail_at["lazy_wait"] = 1;
  auto req = w.request();
  req.lazy_pages = true;
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "lazy migration of workload 'w' failed")) << err;
  EXPECT_TRUE(contains(err, "the workload runs on in VM 'src'"));
  EXPECT_TRUE(contains(err, "the incomplete copy in VM 'src-m1' was killed"));
  EXPECT_EQ(w.src_state(), "running");
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, SourceDyingDuringTheMemoryCopySaysSoAndStopsTheCopy) {
  World w;
  w.src().die_at["lazy_wait"] = 1;
  auto req = w.request();
  req.lazy_pages = true;
  auto err = w.failed(req);
  EXPECT_TRUE(contains(err, "VM 'src' is gone, and the workload's memory with it")) << err;
  EXPECT_TRUE(contains(err, "incomplete copy in VM 'src-m1' was killed"));
  EXPECT_EQ(w.vms.stopped, (std::vector<std::string>{"src-m1"}));
}

TEST(EngineMigrate, SourceThatCannotBeEndedIsAWarningNotAFailure) {
  World w;
  w.src().fail_at["kill"] = 1;  // the first kill is the SIGKILL that ends the source
  auto r = engine::migrate(w.env, w.request());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_TRUE(contains(r.warnings[0], "could not end the source workload"));
  EXPECT_EQ(w.vms.guest("src-m1").workloads.at("w").state, "running");
}

TEST(EngineMigrate, BadRequestsAreRefusedBeforeAnyVmIsTouched) {
  World w;
  auto req = w.request();
  req.to = "src";
  EXPECT_TRUE(contains(w.failed(req), "where it already runs"));
  req = w.request();
  req.lazy_pages = true;
  req.keep_source = true;
  EXPECT_TRUE(contains(w.failed(req), "--lazy-pages cannot be combined with --keep-source"));
  req = w.request();
  req.lazy_pages = true;
  req.link.source = "10.97.0.1/24";
  req.link.destination = "10.98.0.2/24";
  EXPECT_TRUE(contains(w.failed(req), "in one subnet"));
  EXPECT_TRUE(w.src().seen.empty());
  EXPECT_TRUE(w.vms.started.empty());
}

TEST(EngineCycle, TemporaryVmRunsTheScenarioThreeTimesAndIsStopped) {
  World w;
  engine::CycleRequest req;
  auto r = engine::cycle(w.env, req);
  EXPECT_TRUE(r.ok);
  ASSERT_EQ(r.rounds.size(), 3u);
  EXPECT_EQ(r.rounds[0].verdict.before, "42");
  EXPECT_TRUE(w.checkpoints().empty());
  ASSERT_EQ(w.vms.started.size(), 1u);
  EXPECT_EQ(w.vms.stopped, w.vms.started);
}

TEST(EngineCycle, ACounterRestartedFromZeroIsLostState) {
  World w;
  w.src().probe_after_restore = "0\n";
  engine::CycleRequest req;
  req.vm = "src";
  req.workload = "w";
  req.count = 1;
  auto r = engine::cycle(w.env, req);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(contains(r.rounds[0].verdict.detail, "went back from 42 to 0"));
}

TEST(EngineCycle, FailedRestoreStopsTheTemporaryVmAndSaysWhy) {
  World w;
  w.vms.fresh.fail_at["restore"] = 2;
  engine::CycleRequest req;
  req.count = 2;
  try {
    engine::cycle(w.env, req);
    FAIL() << "the cycle succeeded";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "injected failure of restore")) << e.what();
    EXPECT_TRUE(contains(e.what(), "the checkpoint is unchanged"));
  }
  ASSERT_EQ(w.vms.started.size(), 1u);
  EXPECT_EQ(w.vms.stopped, w.vms.started);
}

TEST(EngineCheckpoint, AFileTheGuestDidNotListIsRefusedAndNothingStored) {
  World w;
  w.src().smuggle = "parents/1/images/pages-9.img";
  engine::CheckpointRequest req;
  req.vm = "src";
  req.workload = "w";
  req.name = "c";
  try {
    engine::checkpoint(w.env, req);
    FAIL() << "a checkpoint with an unlisted file was stored";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "differ from the agent's list")) << e.what();
  }
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.no_partial_left());
  EXPECT_EQ(w.src_state(), "running");  // resumed
}

TEST(EngineCheckpoint, ImagesComeThroughTheDataDiskAndTheDiskIsGivenBack) {
  World w;
  std::string dir = w.give_disks("src");
  auto req = World::checkpoint_c();
  engine::checkpoint(w.env, req);
  EXPECT_EQ(w.src().chunks_on_disk, 1);  // the page image; the others come through the port
  core::CheckpointStore store(w.cfg.data_dir);
  auto m = store.load("c");
  EXPECT_EQ(m.channel, "disk");
  EXPECT_EQ(core::try_read_file(store.dir("c") + "/images/pages-1.img", 1 << 20).value_or(""),
            "pages of final");
  store.verify(m);
  EXPECT_EQ(World::blocks(dir + "/out.img"), 0);
}

TEST(EngineCheckpoint, ARangePastTheDataDiskIsRefusedAndNothingStored) {
  World w;
  w.give_disks("src");
  w.src().disk_lies = true;
  auto req = World::checkpoint_c();
  try {
    engine::checkpoint(w.env, req);
    FAIL() << "a checkpoint read from outside the guest's disk was stored";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "of its data disk, which has")) << e.what();
  }
  EXPECT_TRUE(w.checkpoints().empty());
  EXPECT_TRUE(w.no_partial_left());
  EXPECT_EQ(w.src_state(), "running");  // resumed
}

TEST(EngineCheckpoint, AVmWithoutDataDisksUsesThePort) {
  World w;
  auto req = World::checkpoint_c();
  engine::checkpoint(w.env, req);
  EXPECT_EQ(w.src().chunks_on_disk, 0);
  EXPECT_EQ(core::CheckpointStore(w.cfg.data_dir).load("c").channel, "port");
}

TEST(EngineRestore, ImagesGoInThroughTheDataDiskAndTheDiskIsGivenBack) {
  World w;
  auto req = World::checkpoint_c();
  req.options.set_leave_running(true);
  engine::checkpoint(w.env, req);  // through the port: the VM has no disks yet
  std::string dir = w.give_disks("src");
  engine::RestoreRequest r;
  r.vm = "src";
  r.checkpoint = "c";
  r.name = "w2";
  auto out = engine::restore(w.env, r);
  EXPECT_EQ(out.restore.channel, "disk");
  EXPECT_EQ(w.src().staged_from_disk["images/pages-1.img"], "pages of final");
  EXPECT_EQ(w.src().staged_from_disk["images/inventory.img"], test::inventory_image());
  EXPECT_EQ(World::blocks(dir + "/in.img"), 0);
  EXPECT_TRUE(w.src().workloads.count("w2"));
}

TEST(EngineMigrate, ScenarioMovesFromATemporaryVmAndStopsBothVms) {
  World w;
  engine::MigrateRequest req;
  req.scenario = "counter";
  req.temp_vm = "tmp";
  auto r = engine::migrate(w.env, req);
  EXPECT_TRUE(r.verdict.survived) << r.verdict.detail;
  EXPECT_EQ(r.from, "tmp");
  EXPECT_EQ(r.to, "tmp-m1");
  EXPECT_EQ(r.temporary, "counter");
  EXPECT_EQ(w.vms.started, (std::vector<std::string>{"tmp", "tmp-m1"}));
  EXPECT_FALSE(w.vms.running("tmp"));
  EXPECT_FALSE(w.vms.running("tmp-m1"));
  EXPECT_TRUE(w.checkpoints().empty());
}

TEST(EngineMigrate, ScenarioWhoseRestoreFailsStillStopsBothVms) {
  World w;
  w.vms.fresh.fail_at["restore"] = 1;
  engine::MigrateRequest req;
  req.scenario = "counter";
  req.temp_vm = "tmp";
  EXPECT_THROW(engine::migrate(w.env, req), Error);
  EXPECT_FALSE(w.vms.running("tmp"));
  EXPECT_FALSE(w.vms.running("tmp-m1"));
  engine::MigrateRequest both = req;
  both.vm = "src";
  both.workload = "w";
  EXPECT_THROW(engine::migrate(w.env, both), Error);  // a scenario with a running workload
}
