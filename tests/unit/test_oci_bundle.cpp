#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/oci_bundle.hpp"
#include "temp_dir.hpp"

using namespace kcr::core;
using Json = nlohmann::ordered_json;

namespace {

const char* const kMinimal =
    R"({"ociVersion": "1.0.2", "process": {"args": ["sh"]}, "root": {"path": "rootfs"}})";

// Every field kcr honours, each set to something other than its default.
const char* const kFull = R"({
  "ociVersion": "1.2.0",
  "process": {
    "terminal": false,
    "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 4294967295]},
    "args": ["/bin/server", "--port", "80"],
    "env": ["PATH=/usr/bin:/bin", "EMPTY=", "EQ=a=b"],
    "cwd": "/srv"
  },
  "root": {"path": "fs/root", "readonly": true},
  "hostname": "box",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
    {"destination": "/cfg", "type": "none", "source": "conf/../etc", "options": ["bind"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
                   {"type": "network"}, {"type": "cgroup"}, {"type": "user"}],
    "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}
  },
  "annotations": {"org.example.key": "value"}
})";

// What `runc spec` writes on a cgroup v2 host (runc's specconv.Example(), marshalled in its
// field order).
const char* const kRuncSpec = R"({
	"ociVersion": "1.0.2-dev",
	"process": {
		"terminal": true,
		"user": {
			"uid": 0,
			"gid": 0
		},
		"args": [
			"sh"
		],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
			"permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
		},
		"rlimits": [
			{
				"type": "RLIMIT_NOFILE",
				"hard": 1024,
				"soft": 1024
			}
		],
		"noNewPrivileges": true
	},
	"root": {
		"path": "rootfs",
		"readonly": true
	},
	"hostname": "runc",
	"mounts": [
		{"destination": "/proc", "type": "proc", "source": "proc"},
		{"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
		{"destination": "/dev/pts", "type": "devpts", "source": "devpts",
		 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
		{"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
		{"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
		 "options": ["nosuid", "noexec", "nodev"]},
		{"destination": "/sys", "type": "sysfs", "source": "sysfs",
		 "options": ["nosuid", "noexec", "nodev", "ro"]},
		{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		 "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
	],
	"linux": {
		"resources": {
			"devices": [
				{
					"allow": false,
					"access": "rwm"
				}
			]
		},
		"namespaces": [
			{"type": "pid"},
			{"type": "network"},
			{"type": "ipc"},
			{"type": "uts"},
			{"type": "mount"},
			{"type": "cgroup"}
		],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
			"/proc/scsi", "/sys/devices/virtual/tpm"
		],
		"readonlyPaths": [
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
		]
	}
})";

// The message parse_oci_config refuses TEXT with ("" when it accepts it); every refusal must
// be a usage error.
std::string refusal(std::string_view text) {
  try {
    parse_oci_config(text, "/b");
    return "";
  } catch (const kcr::Error& e) {
    EXPECT_EQ(e.code(), kcr::ExitCode::usage) << e.what();
    EXPECT_FALSE(e.hint().empty()) << e.what();
    return e.what();
  }
}

// kFull with the value at JSON pointer POINTER replaced by (or set to) VALUE.
std::string full_with(const std::string& pointer, const Json& value) {
  Json doc = Json::parse(kFull);
  doc[Json::json_pointer(pointer)] = value;
  return doc.dump();
}

// kFull without the member at POINTER.
std::string full_without(const std::string& pointer) {
  Json doc = Json::parse(kFull);
  Json::json_pointer p(pointer);
  Json& parent = doc[p.parent_pointer()];
  if (parent.is_array())
    parent.erase(std::stoul(p.back()));
  else
    parent.erase(p.back());
  return doc.dump();
}

// The dotted path kcr names the field at JSON pointer POINTER by: "/mounts/1/type" is
// "mounts[1].type".
std::string dotted(const std::string& pointer) {
  std::string path;
  std::size_t at = 0;
  while (at < pointer.size()) {
    std::size_t end = pointer.find('/', at + 1);
    if (end == std::string::npos) end = pointer.size();
    std::string token = pointer.substr(at + 1, end - at - 1);
    bool index = !token.empty() && token.find_first_not_of("0123456789") == std::string::npos;
    path += index ? "[" + token + "]" : (path.empty() ? "" : ".") + token;
    at = end;
  }
  return path;
}

#define EXPECT_REFUSED(text, message)                                                  \
  do {                                                                                 \
    std::string why_ = refusal(text);                                                  \
    EXPECT_NE(why_.find(message), std::string::npos)                                   \
        << "wanted: " << (message) << "\ngot: " << (why_.empty() ? "accepted" : why_); \
  } while (0)

void write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace

TEST(OciBundle, MinimalConfigGetsTheDefaults) {
  OciBundle b = parse_oci_config(kMinimal, "/b/");
  EXPECT_EQ(b.dir, "/b");
  EXPECT_EQ(b.root_path, "/b/rootfs");
  EXPECT_FALSE(b.root_readonly);
  EXPECT_EQ(b.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(b.env.empty());
  EXPECT_EQ(b.cwd, "/");
  EXPECT_EQ(b.uid, 0u);
  EXPECT_EQ(b.gid, 0u);
  EXPECT_TRUE(b.additional_gids.empty());
  EXPECT_EQ(b.hostname, "");
  EXPECT_TRUE(b.mounts.empty());
  EXPECT_TRUE(b.namespaces.empty());
  EXPECT_EQ(b.memory_limit, 0u);
  EXPECT_EQ(b.pids_limit, 0);
}

TEST(OciBundle, FullConfigFillsEveryField) {
  OciBundle b = parse_oci_config(kFull, "/bundles/./web");
  EXPECT_EQ(b.dir, "/bundles/web");
  EXPECT_EQ(b.root_path, "/bundles/web/fs/root");
  EXPECT_TRUE(b.root_readonly);
  EXPECT_EQ(b.args, (std::vector<std::string>{"/bin/server", "--port", "80"}));
  EXPECT_EQ(b.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "EMPTY=", "EQ=a=b"}));
  EXPECT_EQ(b.cwd, "/srv");
  EXPECT_EQ(b.uid, 1000u);
  EXPECT_EQ(b.gid, 100u);
  EXPECT_EQ(b.additional_gids, (std::vector<std::uint32_t>{5, 4294967295u}));
  EXPECT_EQ(b.hostname, "box");
  ASSERT_EQ(b.mounts.size(), 7u);
  EXPECT_EQ(b.mounts[0].destination, "/proc");
  EXPECT_EQ(b.mounts[0].type, "proc");
  EXPECT_EQ(b.mounts[0].source, "proc");
  EXPECT_EQ(b.mounts[1].options, (std::vector<std::string>{"nosuid", "mode=755"}));
  EXPECT_EQ(b.mounts[2].type, "bind");
  EXPECT_EQ(b.mounts[2].source, "/srv/data");
  EXPECT_EQ(b.mounts[2].options, (std::vector<std::string>{"rbind", "ro"}));
  // Type "none" with the bind option is a bind mount; its relative source is the bundle's.
  EXPECT_EQ(b.mounts[3].type, "bind");
  EXPECT_EQ(b.mounts[3].source, "/bundles/web/etc");
  EXPECT_EQ(b.mounts[4].type, "devpts");
  EXPECT_EQ(b.mounts[5].type, "mqueue");
  EXPECT_EQ(b.mounts[6].type, "sysfs");
  EXPECT_EQ(b.namespaces,
            (std::vector<std::string>{"pid", "mount", "ipc", "uts", "network", "cgroup", "user"}));
  EXPECT_EQ(b.memory_limit, 64u << 20);
  EXPECT_EQ(b.pids_limit, 32);
}

TEST(OciBundle, RootPathResolvesAgainstTheBundle) {
  auto root_of = [](const char* path, const std::string& dir) {
    return parse_oci_config(full_with("/root/path", path), dir).root_path;
  };
  EXPECT_EQ(root_of("rootfs/", "/b"), "/b/rootfs");
  EXPECT_EQ(root_of("../shared/rootfs", "/bundles/web"), "/bundles/shared/rootfs");
  EXPECT_EQ(root_of("/var/lib/x/../rootfs", "/b"), "/var/lib/rootfs");
  EXPECT_EQ(root_of(".", "/b"), "/b");
  // A relative bundle directory is taken from the working directory.
  std::string cwd = std::filesystem::current_path().lexically_normal().string();
  EXPECT_EQ(parse_oci_config(kMinimal, "bundle").dir, cwd + "/bundle");
  EXPECT_EQ(parse_oci_config(kMinimal, "bundle").root_path, cwd + "/bundle/rootfs");
}

// runc spec's config asks for much kcr cannot do: each refusal names the first such field in
// the file, and with all of them gone the rest is accepted.
TEST(OciBundle, RuncSpecIsRefusedNamingItsFirstUnsupportedField) {
  Json doc = Json::parse(kRuncSpec);
  struct Step {
    const char* message;
    void (*fix)(Json&);
  };
  const Step steps[] = {
      {"process.terminal is true, but kcr runs workloads without a terminal",
       [](Json& d) { d["process"]["terminal"] = false; }},
      {"process.capabilities is not supported by kcr",
       [](Json& d) { d["process"].erase("capabilities"); }},
      {"process.rlimits is not supported by kcr", [](Json& d) { d["process"].erase("rlimits"); }},
      {"process.noNewPrivileges is not supported by kcr",
       [](Json& d) { d["process"].erase("noNewPrivileges"); }},
      {"mount \"/sys/fs/cgroup\" has type \"cgroup\", which kcr does not support",
       [](Json& d) { d["mounts"].erase(6); }},
      {"linux.resources.devices is not supported by kcr",
       [](Json& d) { d["linux"].erase("resources"); }},
      {"linux.maskedPaths is not supported by kcr",
       [](Json& d) { d["linux"].erase("maskedPaths"); }},
      {"linux.readonlyPaths is not supported by kcr",
       [](Json& d) { d["linux"].erase("readonlyPaths"); }},
  };
  EXPECT_REFUSED(std::string(kRuncSpec), std::string("config.json: ") + steps[0].message);
  for (const auto& step : steps) {
    EXPECT_REFUSED(doc.dump(), step.message);
    step.fix(doc);
  }
  OciBundle b = parse_oci_config(doc.dump(), "/b");
  EXPECT_EQ(b.root_path, "/b/rootfs");
  EXPECT_TRUE(b.root_readonly);
  EXPECT_EQ(b.hostname, "runc");
  EXPECT_EQ(b.mounts.size(), 6u);
  EXPECT_EQ(b.namespaces,
            (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount", "cgroup"}));
}

TEST(OciBundle, UnsupportedFieldsAreNamedNotIgnored) {
  const std::pair<const char*, Json> fields[] = {
      {"/hooks", Json::object()},
      {"/domainname", "example.com"},
      {"/process/consoleSize", {{"height", 24}, {"width", 80}}},
      {"/process/apparmorProfile", "unconfined"},
      {"/process/user/umask", 18},
      {"/process/user/username", "root"},
      {"/root/mode", "rw"},
      {"/mounts/0/uidMappings", Json::array()},
      {"/linux/uidMappings", Json::array()},
      {"/linux/seccomp", Json::object()},
      {"/linux/sysctl", Json::object()},
      {"/linux/cgroupsPath", "/kcr"},
      {"/linux/namespaces/0/flags", 0},
      {"/linux/resources/cpu", {{"shares", 1024}}},
      {"/linux/resources/blockIO", Json::object()},
      {"/linux/resources/memory/swap", 1 << 30},
      {"/linux/resources/memory/reservation", 1 << 30},
      {"/linux/resources/pids/max", 1},
  };
  for (const auto& [pointer, value] : fields) {
    std::string path = dotted(pointer);
    SCOPED_TRACE(path);
    std::string why = refusal(full_with(pointer, value));
    EXPECT_EQ(why, "config.json: " + path + " is not supported by kcr");
  }
  try {
    parse_oci_config(full_with("/linux/cpu", 1), "/b");
    FAIL() << "accepted";
  } catch (const kcr::Error& e) {
    EXPECT_EQ(e.hint().rfind("remove it", 0), 0u) << e.hint();
  }
  // A key that is not a plain word is shown quoted, escaped.
  EXPECT_REFUSED(full_with("/process/a\x1b[1mb", 1),
                 "process[\"a\\u001b[1mb\"] is not supported by kcr");
}

TEST(OciBundle, WrongTypesNameTheFieldAndTheTypeWanted) {
  const std::pair<const char*, Json> cases[] = {
      {"/ociVersion", 1},
      {"/process", Json::array()},
      {"/process/terminal", "no"},
      {"/process/user", 0},
      {"/process/user/uid", "0"},
      {"/process/user/gid", nullptr},
      {"/process/user/additionalGids", 5},
      {"/process/user/additionalGids/1", "5"},
      {"/process/args", "sh"},
      {"/process/args/1", 1},
      {"/process/env", "PATH=/bin"},
      {"/process/env/0", true},
      {"/process/cwd", Json::object()},
      {"/root", "rootfs"},
      {"/root/path", 1},
      {"/root/readonly", "yes"},
      {"/hostname", 1},
      {"/mounts", Json::object()},
      {"/mounts/1", "/dev"},
      {"/mounts/1/destination", 1},
      {"/mounts/1/type", false},
      {"/mounts/1/source", 1},
      {"/mounts/1/options", "ro"},
      {"/mounts/1/options/0", 1},
      {"/linux", Json::array()},
      {"/linux/namespaces", Json::object()},
      {"/linux/namespaces/2", "ipc"},
      {"/linux/namespaces/2/type", 2},
      {"/linux/resources", 1},
      {"/linux/resources/memory", 64},
      {"/linux/resources/memory/limit", "64m"},
      {"/linux/resources/pids", Json::array()},
      {"/linux/resources/pids/limit", "32"},
      {"/annotations", Json::array()},
      {"/annotations/org.example.key", 1},
  };
  for (const auto& [pointer, value] : cases) {
    Json doc = Json::parse(kFull);
    Json wanted = doc[Json::json_pointer(pointer)];
    std::string type = wanted.is_object()    ? "an object"
                       : wanted.is_array()   ? "an array"
                       : wanted.is_string()  ? "a string"
                       : wanted.is_boolean() ? "a boolean"
                                             : "a number";
    std::string path = dotted(pointer);
    if (path == "annotations.org.example.key") path = "annotations[\"org.example.key\"]";
    SCOPED_TRACE(pointer);
    EXPECT_EQ(refusal(full_with(pointer, value)), "config.json: " + path + " must be " + type);
  }
  EXPECT_REFUSED("[]", "config.json: the top level must be an object");
  EXPECT_REFUSED("\"config\"", "config.json: the top level must be an object");
}

TEST(OciBundle, NumbersMustBeIntegersInRange) {
  for (Json id : {Json(-1), Json(4294967296), Json(1.5), Json(1e3)}) {
    SCOPED_TRACE(id.dump());
    EXPECT_EQ(refusal(full_with("/process/user/uid", id)),
              "config.json: process.user.uid must be an integer from 0 to 4294967295");
  }
  EXPECT_REFUSED(full_with("/process/user/additionalGids/0", -5),
                 "process.user.additionalGids[0] must be an integer from 0 to 4294967295");
  EXPECT_EQ(parse_oci_config(full_with("/process/user/uid", 4294967295u), "/b").uid, 4294967295u);
}

TEST(OciBundle, RequiredFields) {
  EXPECT_REFUSED(full_without("/ociVersion"), "config.json: ociVersion is missing");
  EXPECT_REFUSED(full_without("/process"), "config.json: process is missing");
  EXPECT_REFUSED(full_without("/process/args"), "config.json: process.args is missing");
  EXPECT_REFUSED(full_without("/root"), "config.json: root is missing");
  EXPECT_REFUSED(full_without("/root/path"), "config.json: root.path is missing");
  EXPECT_REFUSED(full_with("/root/path", ""), "config.json: root.path is empty");
  EXPECT_REFUSED(full_with("/process/args", Json::array()), "config.json: process.args is empty");
  EXPECT_REFUSED(full_with("/process/args/0", ""), "config.json: process.args[0] is empty");
  EXPECT_REFUSED(full_without("/mounts/2/destination"), "mounts[2].destination is missing");
  EXPECT_REFUSED(full_without("/linux/namespaces/0/type"), "linux.namespaces[0].type is missing");
}

TEST(OciBundle, OciVersionMustBeOneDotSomething) {
  for (const char* v : {"1.0.0", "1.0.2-dev", "1.2.0", "1.10.3+build"}) {
    EXPECT_EQ(refusal(full_with("/ociVersion", v)), "") << v;
  }
  for (const char* v : {"2.0.0", "0.5.0", "1", "1.", "10.0.0", "", "v1.0.0"}) {
    SCOPED_TRACE(v);
    EXPECT_REFUSED(full_with("/ociVersion", v), "is not a 1.x version of the OCI runtime spec");
  }
}

TEST(OciBundle, TerminalTrueIsRefused) {
  try {
    parse_oci_config(full_with("/process/terminal", true), "/b");
    FAIL() << "accepted";
  } catch (const kcr::Error& e) {
    EXPECT_STREQ(
        e.what(),
        "config.json: process.terminal is true, but kcr runs workloads without a terminal");
    EXPECT_NE(e.hint().find("false"), std::string::npos);
  }
  EXPECT_EQ(refusal(full_without("/process/terminal")), "");
}

TEST(OciBundle, ProcessValues) {
  for (const char* bad : {"PATH", "=x", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_REFUSED(full_with("/process/env/1", bad), "config.json: process.env[1] ");
    EXPECT_REFUSED(full_with("/process/env/1", bad), "is not KEY=VALUE");
  }
  EXPECT_REFUSED(full_with("/process/cwd", "srv"),
                 "config.json: process.cwd \"srv\" is not an absolute path");
  EXPECT_REFUSED(full_with("/process/cwd", ""), "process.cwd \"\" is not an absolute path");
  // A NUL would cut an argument short where the guest passes it on as a C string.
  EXPECT_REFUSED(full_with("/process/args/1", std::string("a\0b", 3)),
                 "process.args[1] holds a NUL character");
  EXPECT_REFUSED(full_with("/hostname", std::string(65, 'h')), "hostname is longer than 64 bytes");
  EXPECT_EQ(refusal(full_with("/hostname", std::string(64, 'h'))), "");
}

TEST(OciBundle, HostnameNeedsAUtsNamespace) {
  EXPECT_REFUSED(full_without("/linux/namespaces/3"),
                 "hostname is set, but linux.namespaces has no uts namespace");
  Json doc = Json::parse(kFull);
  doc["linux"]["namespaces"].erase(3);
  doc.erase("hostname");
  EXPECT_EQ(refusal(doc.dump()), "");
}

TEST(OciBundle, MountTypes) {
  for (const char* type : {"cgroup", "cgroup2", "ext4", "overlay", "nfs", "devtmpfs", "none", ""}) {
    SCOPED_TRACE(type);
    Json doc = Json::parse(kFull);
    doc["mounts"][1]["type"] = type;
    std::string why = refusal(doc.dump());
    EXPECT_EQ(why, std::string("config.json: mount \"/dev\" has type \"") + type +
                       "\", which kcr does not support");
  }
  EXPECT_REFUSED(full_without("/mounts/1/type"), "config.json: mount \"/dev\" has no type");
  // What the file says is shown escaped.
  EXPECT_REFUSED(full_with("/mounts/1/type", "\x1b[31m"), "has type \"\\u001b[31m\"");
  EXPECT_REFUSED(full_with("/mounts/1/destination", "dev"),
                 "mounts[1].destination \"dev\" is not an absolute path");

  // bind: by type, or by a bind/rbind option whatever the type; a source is required.
  Json doc = Json::parse(kFull);
  doc["mounts"] = Json::parse(R"([
      {"destination": "/a", "type": "bind", "source": "a"},
      {"destination": "/b", "source": "/host/b", "options": ["rbind"]},
      {"destination": "/c", "type": "tmpfs", "source": "/c", "options": ["ro", "bind"]}])");
  OciBundle b = parse_oci_config(doc.dump(), "/bundle");
  ASSERT_EQ(b.mounts.size(), 3u);
  for (const auto& m : b.mounts) EXPECT_EQ(m.type, "bind") << m.destination;
  EXPECT_EQ(b.mounts[0].source, "/bundle/a");
  EXPECT_EQ(b.mounts[1].source, "/host/b");
  EXPECT_EQ(b.mounts[2].source, "/c");
  EXPECT_REFUSED(full_without("/mounts/2/source"), "config.json: mount \"/data\" binds no source");
  EXPECT_REFUSED(full_with("/mounts/2/source", ""), "mount \"/data\" binds no source");
}

TEST(OciBundle, Namespaces) {
  for (const char* type : {"pid", "mount", "ipc", "uts", "network", "cgroup", "user"}) {
    SCOPED_TRACE(type);
    std::string text = std::string(R"({"ociVersion": "1.0.2", "process": {"args": ["sh"]},
        "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": ")") +
                       type + R"(", "path": "/proc/1/ns/x"}]}})";
    EXPECT_EQ(refusal(text),
              "config.json: linux.namespaces[0].path is not supported by kcr: it joins an existing "
              "namespace");
  }
  EXPECT_REFUSED(full_with("/linux/namespaces/0/type", "time"),
                 "config.json: linux.namespaces[0].type \"time\" is not a namespace kcr makes");
  EXPECT_REFUSED(full_with("/linux/namespaces/-", {{"type", "pid"}}),
                 "config.json: linux.namespaces[7].type \"pid\" is listed twice");
  // None listed: by the spec the workload shares the guest's (and may set no hostname).
  Json doc = Json::parse(kMinimal);
  doc["linux"]["namespaces"] = Json::array();
  EXPECT_TRUE(parse_oci_config(doc.dump(), "/b").namespaces.empty());
}

TEST(OciBundle, MemoryLimit) {
  auto limit = [](Json v) {
    return parse_oci_config(full_with("/linux/resources/memory/limit", v), "/b").memory_limit;
  };
  EXPECT_EQ(limit(4 << 20), 4u << 20);
  EXPECT_EQ(limit(std::int64_t{1} << 40), std::uint64_t{1} << 40);
  EXPECT_EQ(limit(INT64_MAX), static_cast<std::uint64_t>(INT64_MAX));
  EXPECT_EQ(limit(-1), 0u);  // the spec's "unlimited"
  for (Json bad : {Json((4 << 20) - 1), Json(0), Json(-2)}) {
    SCOPED_TRACE(bad.dump());
    EXPECT_REFUSED(full_with("/linux/resources/memory/limit", bad),
                   "config.json: linux.resources.memory.limit " + bad.dump() +
                       " is below 4194304 bytes (4 MiB)");
  }
  for (Json bad : {Json(std::uint64_t{1} << 63), Json(67108864.0)}) {
    SCOPED_TRACE(bad.dump());
    EXPECT_REFUSED(full_with("/linux/resources/memory/limit", bad),
                   "linux.resources.memory.limit must be an integer");
  }
  EXPECT_EQ(
      parse_oci_config(full_with("/linux/resources/memory", Json::object()), "/b").memory_limit,
      0u);
}

TEST(OciBundle, PidsLimit) {
  auto limit = [](Json v) {
    return parse_oci_config(full_with("/linux/resources/pids/limit", v), "/b").pids_limit;
  };
  EXPECT_EQ(limit(1), 1);
  EXPECT_EQ(limit(4194304), 4194304);
  EXPECT_EQ(limit(-1), 0);
  for (Json bad : {Json(0), Json(-2), Json(4194305), Json(INT64_MAX)}) {
    SCOPED_TRACE(bad.dump());
    EXPECT_REFUSED(
        full_with("/linux/resources/pids/limit", bad),
        "config.json: linux.resources.pids.limit " + bad.dump() + " is not from 1 to 4194304");
  }
  EXPECT_REFUSED(full_with("/linux/resources/pids/limit", 2.5),
                 "linux.resources.pids.limit must be an integer");
}

TEST(OciBundle, AnnotationsAreAcceptedAndIgnored) {
  Json doc = Json::parse(kMinimal);
  doc["annotations"] = {{"io.kubernetes.cri.container-type", "container"}, {"", "empty key"}};
  EXPECT_EQ(refusal(doc.dump()), "");
}

TEST(OciBundle, MalformedJson) {
  for (const char* text : {"", "{", "{\"ociVersion\": }", "{} x", "{\"a\": \"\xff\"}", "nul"}) {
    SCOPED_TRACE(text);
    std::string why = refusal(text);
    EXPECT_EQ(why.rfind("config.json: not valid JSON at byte ", 0), 0u) << why;
    EXPECT_NE(why.find("line 1, column"), std::string::npos) << why;
  }
  // The token nlohmann quotes is cut short: an unterminated 100 KiB string is not all shown.
  EXPECT_LT(refusal("{\"a\": \"" + std::string(100000, 'x')).size(), 400u);
}

TEST(OciBundle, AnObjectOfManyMembersIsRefused) {
  Json doc = Json::parse(kMinimal);
  doc["annotations"] = Json::object();
  for (int i = 0; i < 512; ++i) doc["annotations"]["k" + std::to_string(i)] = "v";
  EXPECT_EQ(refusal(doc.dump()), "");
  doc["annotations"]["k512"] = "v";
  EXPECT_REFUSED(doc.dump(), "config.json: an object has more than 512 members");
}

TEST(OciBundle, ReadsABundleDirectory) {
  kcr::test::TempDir t;
  std::filesystem::create_directory(t.path() + "/rootfs");
  write(t.path() + "/config.json", kMinimal);
  OciBundle b = read_oci_bundle(t.path());
  EXPECT_EQ(b.dir, t.path());
  EXPECT_EQ(b.root_path, t.path() + "/rootfs");
  EXPECT_EQ(b.args, std::vector<std::string>{"sh"});
  // A relative bundle directory comes back absolute.
  std::string relative =
      std::filesystem::relative(t.path(), std::filesystem::current_path()).string();
  EXPECT_EQ(read_oci_bundle(relative).dir, t.path());
}

TEST(OciBundle, ReadsARelativeRootPathOutsideTheBundle) {
  kcr::test::TempDir t;
  std::filesystem::create_directories(t.path() + "/bundle");
  std::filesystem::create_directories(t.path() + "/images/alpine");
  write(t.path() + "/bundle/config.json", full_with("/root/path", "../images/alpine/"));
  OciBundle b = read_oci_bundle(t.path() + "/bundle");
  EXPECT_EQ(b.root_path, t.path() + "/images/alpine");
}

TEST(OciBundle, ReadRefusesWhatIsNotABundle) {
  kcr::test::TempDir t;
  auto refused = [](const std::string& dir) -> std::string {
    try {
      read_oci_bundle(dir);
      return "accepted";
    } catch (const kcr::Error& e) {
      EXPECT_EQ(e.code(), kcr::ExitCode::usage) << e.what();
      return e.what();
    }
  };
  EXPECT_EQ(refused(t.path() + "/none"), "bundle " + t.path() + "/none does not exist");
  write(t.path() + "/file", "x");
  EXPECT_EQ(refused(t.path() + "/file"), "bundle " + t.path() + "/file is not a directory");
  EXPECT_EQ(refused(t.path()), "bundle " + t.path() + " has no config.json");

  std::filesystem::create_directory(t.path() + "/config.json");
  EXPECT_EQ(refused(t.path()), t.path() + "/config.json is not a regular file");
  std::filesystem::remove(t.path() + "/config.json");

  write(t.path() + "/config.json", kMinimal);
  EXPECT_EQ(refused(t.path()), "bundle " + t.path() + ": its root file system \"" + t.path() +
                                   "/rootfs\" (root.path) is not a directory");
  write(t.path() + "/rootfs", "a file, not a directory");
  EXPECT_NE(refused(t.path()).find("(root.path) is not a directory"), std::string::npos);

  // The bundle's own errors come through as parse_oci_config says them.
  std::filesystem::remove(t.path() + "/rootfs");
  std::filesystem::create_directory(t.path() + "/rootfs");
  write(t.path() + "/config.json", full_with("/process/terminal", true));
  EXPECT_EQ(refused(t.path()).rfind("config.json: process.terminal is true", 0), 0u);
}

TEST(OciBundle, ReadRefusesAConfigOverOneMiBBeforeParsingIt) {
  kcr::test::TempDir t;
  std::filesystem::create_directory(t.path() + "/rootfs");
  // A valid config padded with white space: accepted at 1 MiB exactly, refused one byte over,
  // so the refusal is the size's, not the parser's.
  std::string text = kMinimal;
  text.resize(kMaxOciConfigBytes, ' ');
  write(t.path() + "/config.json", text);
  EXPECT_EQ(read_oci_bundle(t.path()).args, std::vector<std::string>{"sh"});
  text += ' ';
  write(t.path() + "/config.json", text);
  try {
    read_oci_bundle(t.path());
    FAIL() << "accepted";
  } catch (const kcr::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              t.path() + "/config.json is 1048577 bytes, more than the 1 MiB kcr reads");
    EXPECT_EQ(e.code(), kcr::ExitCode::usage);
  }
}
