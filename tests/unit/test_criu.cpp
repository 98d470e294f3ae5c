#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "core/criu_options.hpp"
#include "core/criu_stats.hpp"
#include "core/error.hpp"
#include "core/scenario.hpp"
#include "criu_stats.pb.h"

using namespace kcr::core;

namespace {

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string stats_file(const kcr::criu::StatsEntry& e, bool service_magic = true) {
  std::string payload;
  e.SerializeToString(&payload);
  std::string out;
  auto put = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  if (service_magic) put(0x55105940);
  put(0x57093306);
  put(static_cast<uint32_t>(payload.size()));
  return out + payload;
}

}  // namespace

TEST(CriuOptions, PreDumpTracksMemoryAndNeverStopsTheTree) {
  kcr::proto::CriuOptions o;
  o.set_tcp_established(true);
  CriuDumpTarget t;
  t.pid = 42;
  t.images_dir = "/r/2/images";
  t.work_dir = "/r/2/work";
  t.pre_dump = true;
  t.prev_images_dir = "../../1/images";
  auto pre = criu_dump_argv("criu", t, o);
  EXPECT_EQ(pre[1], "pre-dump");
  EXPECT_TRUE(has(pre, "--track-mem"));
  auto prev = std::find(pre.begin(), pre.end(), "--prev-images-dir");
  ASSERT_NE(prev, pre.end());
  EXPECT_EQ(*(prev + 1), "../../1/images");
  EXPECT_FALSE(has(pre, "--leave-stopped"));
  EXPECT_FALSE(has(pre, "--network-lock"));

  t.pre_dump = false;
  t.track_mem = true;
  auto final_dump = criu_dump_argv("criu", t, o);
  EXPECT_EQ(final_dump[1], "dump");
  EXPECT_TRUE(has(final_dump, "--track-mem"));
  EXPECT_TRUE(has(final_dump, "--prev-images-dir"));
  EXPECT_TRUE(has(final_dump, "--leave-stopped"));
  EXPECT_TRUE(has(final_dump, "--tcp-established"));
}

TEST(CriuOptions, LazyDumpServesMemoryAndLazyPagesFetchesIt) {
  kcr::proto::CriuOptions o;
  CriuDumpTarget t;
  t.pid = 7;
  t.images_dir = "/img";
  t.work_dir = "/work";
  t.lazy_port = 7077;
  t.status_fd = 3;
  auto dump = criu_dump_argv("criu", t, o);
  auto lazy = std::find(dump.begin(), dump.end(), "--lazy-pages");
  ASSERT_NE(lazy, dump.end());
  auto port = std::find(dump.begin(), dump.end(), "--port");
  ASSERT_NE(port, dump.end());
  EXPECT_EQ(*(port + 1), "7077");
  auto status = std::find(dump.begin(), dump.end(), "--status-fd");
  ASSERT_NE(status, dump.end());
  EXPECT_EQ(*(status + 1), "3");
  EXPECT_TRUE(has(dump, "--leave-stopped"));  // kcr ends it once the destination has it all

  CriuLazyPagesTarget l;
  l.images_dir = "/s/images";
  l.work_dir = "/s/work";
  l.address = "10.97.0.1";
  l.port = 7077;
  auto daemon = criu_lazy_pages_argv("criu", l);
  EXPECT_EQ(daemon[1], "lazy-pages");
  EXPECT_TRUE(has(daemon, "--page-server"));
  EXPECT_TRUE(has(daemon, "10.97.0.1"));
  EXPECT_FALSE(has(daemon, "--status-fd"));

  CriuRestoreTarget r;
  r.images_dir = "/s/images";
  r.work_dir = "/s/work";
  r.pid_file = "/s/work/pid";
  EXPECT_FALSE(has(criu_restore_argv("criu", r, o), "--lazy-pages"));
  r.lazy_pages = true;
  EXPECT_TRUE(has(criu_restore_argv("criu", r, o), "--lazy-pages"));
}

TEST(CriuOptions, EachOptionMapsToItsFlag) {
  kcr::proto::CriuOptions o;
  CriuDumpTarget t;
  t.pid = 42;
  t.images_dir = "/img";
  t.work_dir = "/work";
  auto plain = criu_dump_argv("criu", t, o);
  EXPECT_EQ(plain[0], "criu");
  EXPECT_EQ(plain[1], "dump");
  EXPECT_TRUE(has(plain, "42"));
  EXPECT_FALSE(has(plain, "--tcp-established"));
  EXPECT_FALSE(has(plain, "--leave-running"));
  EXPECT_TRUE(has(plain, "--leave-stopped"));  // kcr kills the tree once the checkpoint is stored

  o.set_leave_running(true);
  o.set_tcp_established(true);
  o.set_ext_unix_sk(true);
  o.set_file_locks(true);
  o.set_link_remap(true);
  o.set_shell_job(true);
  o.set_tcp_skip_in_flight(true);
  o.set_manage_cgroups_mode("soft");
  auto all = criu_dump_argv("criu", t, o);
  for (const char* flag :
       {"--leave-running", "--tcp-established", "--ext-unix-sk", "--file-locks", "--link-remap",
        "--shell-job", "--skip-in-flight", "--manage-cgroups=soft"}) {
    EXPECT_TRUE(has(all, flag)) << flag;
  }
  // the guest has nftables, not iptables
  auto lock = std::find(all.begin(), all.end(), "--network-lock");
  ASSERT_NE(lock, all.end());
  EXPECT_EQ(*(lock + 1), "nftables");

  auto restore = criu_restore_argv("criu", {"/img", "/work", "/work/pid"}, o);
  EXPECT_EQ(restore[1], "restore");
  EXPECT_TRUE(has(restore, "--tcp-established"));
  EXPECT_TRUE(has(restore, "--pidfile"));
  EXPECT_TRUE(has(restore, "--root"));
  EXPECT_FALSE(has(restore, "--leave-running"));
  o.set_manage_cgroups_mode("bogus");
  EXPECT_THROW(criu_dump_argv("criu", t, o), kcr::Error);
}

TEST(CriuOptions, CheckAndVersionArgv) {
  using argv = std::vector<std::string>;
  EXPECT_EQ(criu_check_argv("/usr/sbin/criu"), (argv{"/usr/sbin/criu", "check"}));
  EXPECT_EQ(criu_check_argv("criu", "mem_dirty_track"),
            (argv{"criu", "check", "--feature", "mem_dirty_track"}));
  EXPECT_EQ(criu_check_argv("criu", "uffd-noncoop"),
            (argv{"criu", "check", "--feature", "uffd-noncoop"}));
  EXPECT_EQ(criu_version_argv("criu"), (argv{"criu", "--version"}));
}

TEST(CriuOptions, ParsesTheVersionLine) {
  EXPECT_EQ(parse_criu_version("Version: 3.17.1\n"), "3.17.1");
  EXPECT_EQ(parse_criu_version("Version: 3.19\r\nGitID: v3.19\n"), "3.19");
  EXPECT_EQ(parse_criu_version("  Version:\t4.0  \n"), "4.0");
  EXPECT_EQ(parse_criu_version("criu: command not found\n"), "");
}

TEST(CriuOptions, CheckRefusesWhatIsNotAFeatureName) {
  for (const std::string& bad :
       std::vector<std::string>{"Mem", "a b", "x;rm", "../x", std::string(33, 'a')}) {
    EXPECT_THROW(criu_check_argv("criu", bad), kcr::Error) << bad;
  }
  EXPECT_NO_THROW(criu_check_argv("criu", std::string(32, 'a')));
}

TEST(CriuOptions, LogErrorsPicksErrorLinesOrTheTail) {
  std::string log =
      "(00.001) Version: 3.17.1\n(00.002) Error (criu/tty.c:1): tty: Can't dump\n"
      "(00.003) noise\n(00.004) Error (criu/cr-dump.c:2): Dumping FAILED.\n";
  EXPECT_EQ(criu_log_errors(log),
            "(00.002) Error (criu/tty.c:1): tty: Can't dump\n(00.004) Error (criu/cr-dump.c:2): "
            "Dumping FAILED.\n");
  EXPECT_EQ(criu_log_errors("a\nb\n"), "a\nb\n");
}

TEST(CriuStats, ParsesDumpAndRestoreStats) {
  kcr::criu::StatsEntry e;
  auto* d = e.mutable_dump();
  d->set_freezing_time(10);
  d->set_frozen_time(20);
  d->set_memdump_time(30);
  d->set_memwrite_time(40);
  d->set_pages_scanned(50);
  d->set_pages_written(60);
  auto s = parse_dump_stats(stats_file(e));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->frozen_time, 20u);
  EXPECT_EQ(s->pages_written, 60u);
  EXPECT_TRUE(parse_dump_stats(stats_file(e, false)).has_value());
  EXPECT_FALSE(parse_restore_stats(stats_file(e)).has_value());

  kcr::criu::StatsEntry r;
  r.mutable_restore()->set_forking_time(7);
  r.mutable_restore()->set_restore_time(8);
  r.mutable_restore()->set_pages_restored(9);
  auto rs = parse_restore_stats(stats_file(r));
  ASSERT_TRUE(rs.has_value());
  EXPECT_EQ(rs->restore_time, 8u);
}

TEST(CriuStats, RejectsGarbageFromTheGuest) {
  EXPECT_FALSE(parse_dump_stats("").has_value());
  EXPECT_FALSE(parse_dump_stats("short").has_value());
  EXPECT_FALSE(parse_dump_stats(std::string(100, '\xff')).has_value());
  kcr::criu::StatsEntry e;
  e.mutable_dump()->set_frozen_time(1);
  std::string f = stats_file(e);
  uint32_t huge = 0x7fffffff;
  std::memcpy(f.data() + 8, &huge, 4);  // size field beyond the data
  EXPECT_FALSE(parse_dump_stats(f).has_value());
}

TEST(Scenario, CounterMustNeverGoBack) {
  const auto& s = find_scenario("counter");
  EXPECT_TRUE(judge_probe(s, "12\n", "13\n").survived);
  EXPECT_TRUE(judge_probe(s, "12", "12").survived);
  auto v = judge_probe(s, "12", "1");
  EXPECT_FALSE(v.survived);
  EXPECT_NE(v.detail.find("went back"), std::string::npos);
  EXPECT_FALSE(judge_probe(s, "12", "(probe failed)").survived);
}

TEST(Scenario, MembufChecksumMustMatch) {
  const auto& s = find_scenario("membuf");
  EXPECT_TRUE(judge_probe(s, "ok 10485760 abcdef0123", "ok 10485760 abcdef0123").survived);
  EXPECT_FALSE(judge_probe(s, "ok 10485760 abcdef0123", "ok 10485760 abcdef0124").survived);
  EXPECT_FALSE(judge_probe(s, "ok 10485760 abc", "mismatch expected=abc actual=def").survived);
}

TEST(Scenario, TcpListenerAndEstablishedConnection) {
  const auto& l = find_scenario("tcp-listen");
  EXPECT_TRUE(judge_probe(l, "hello 00ab 3", "hello 00ab 4").survived);
  EXPECT_FALSE(judge_probe(l, "hello 00ab 3", "hello 00ab 1").survived);
  EXPECT_FALSE(judge_probe(l, "hello 00ab 3", "hello 99cd 4").survived);
  EXPECT_FALSE(judge_probe(l, "hello 00ab 3", "").survived);
  const auto& t = find_scenario("tcp-established");
  EXPECT_TRUE(t.options.tcp_established());
  EXPECT_TRUE(judge_probe(t, "received 10 errors 0", "received 25 errors 0").survived);
  EXPECT_FALSE(judge_probe(t, "received 10 errors 0", "received 10 errors 0").survived);
  EXPECT_FALSE(judge_probe(t, "received 10 errors 0", "received 30 errors 2").survived);
  EXPECT_FALSE(judge_probe(t, "received 10 errors 0", "broken EOF").survived);
  EXPECT_THROW(find_scenario("nope"), kcr::Error);
  EXPECT_EQ(scenario_for_argv({"kcr-scenario", "membuf", "--size", "100M"})->name, "membuf");
  EXPECT_EQ(scenario_for_argv({"sh", "-c", "x"}), nullptr);
}

TEST(CriuOptions, AWorkloadInAUserNamespaceHasItsHostMountsExternal) {
  kcr::proto::CriuOptions o;
  CriuDumpTarget t;
  t.pid = 42;
  t.images_dir = "/img";
  t.work_dir = "/work";
  EXPECT_FALSE(has(criu_dump_argv("criu", t, o), "--external"));
  t.external_mounts = k_userns_external_mounts;
  auto dump = criu_dump_argv("criu", t, o);
  for (const auto& path : k_userns_external_mounts) {
    EXPECT_TRUE(has(dump, "mnt[" + path + "]:" + external_mount_key(path))) << path;
  }
  EXPECT_EQ(external_mount_key("/sys/fs/cgroup"), "kcr-sys-fs-cgroup");
  EXPECT_NE(external_mount_key("/sys"), external_mount_key("/dev"));
  // A pre-dump copies memory only: no mount options.
  t.pre_dump = true;
  EXPECT_FALSE(has(criu_dump_argv("criu", t, o), "--external"));

  CriuRestoreTarget r;
  r.images_dir = "/s/images";
  r.work_dir = "/s/work";
  r.pid_file = "/s/work/pid";
  auto plain = criu_restore_argv("criu", r, o);
  EXPECT_FALSE(has(plain, "--mntns-compat-mode"));
  EXPECT_FALSE(has(plain, "--external"));
  auto root = std::find(plain.begin(), plain.end(), "--root");
  ASSERT_NE(root, plain.end());
  EXPECT_EQ(*(root + 1), "/");
  r.mntns_compat = true;
  r.root = "/run/kcr-root";
  r.external_mounts = {{"/sys", "/run/kcr-ext/sys"}, {"/dev/pts", "/dev/pts"}};
  auto userns = criu_restore_argv("criu", r, o);
  EXPECT_TRUE(has(userns, "--mntns-compat-mode"));
  EXPECT_TRUE(has(userns, "mnt[kcr-sys]:/run/kcr-ext/sys"));
  EXPECT_TRUE(has(userns, "mnt[kcr-dev-pts]:/dev/pts"));
  root = std::find(userns.begin(), userns.end(), "--root");
  ASSERT_NE(root, userns.end());
  EXPECT_EQ(*(root + 1), "/run/kcr-root");
  EXPECT_FALSE(has(userns, "--cgroup-root"));
  // A workload with cgroup limits is restored into its group, made first.
  r.cgroup_root = "/kcr/copy";
  auto limited = criu_restore_argv("criu", r, o);
  auto cg = std::find(limited.begin(), limited.end(), "--cgroup-root");
  ASSERT_NE(cg, limited.end());
  EXPECT_EQ(*(cg + 1), "/kcr/copy");
}
