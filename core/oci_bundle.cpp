#include "core/oci_bundle.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::core {

namespace {

// Members in document order, so the first problem reported is the first one in the file.
using Json = nlohmann::ordered_json;

// ordered_json finds a member by a linear search, so an object of many members costs quadratic
// time to parse; a hostile file gets no more than this many in one object (runc spec's largest
// object has eight).
constexpr std::size_t kMaxMembers = 512;

const char* const kSpecHint =
    "the OCI runtime spec says what each field of config.json holds; `runc spec` writes an "
    "example";
const char* const kMountTypesHint =
    "kcr mounts bind, tmpfs, proc, sysfs, devpts and mqueue file systems; remove the mount or "
    "make it one of these";
const char* const kNamespacesHint =
    "kcr makes pid, mount, ipc, uts, network, cgroup and user namespaces";

[[noreturn]] void refuse(const std::string& what, const std::string& hint) {
  throw Error("config.json: " + what, hint, ExitCode::usage);
}

// TEXT as a JSON string literal, control characters escaped, cut after 80 bytes: what the file
// says, safe to print.
std::string json_quoted(std::string_view text) {
  constexpr std::size_t kShown = 80;
  std::string q = Json(std::string(text.substr(0, kShown)))
                      .dump(-1, ' ', false, Json::error_handler_t::replace);
  return text.size() > kShown ? q + "..." : q;
}

// The dotted path of member KEY of the object at PATH ("process.user"); a key that is not a
// plain word is shown quoted (process["a b"]).
std::string member_path(const std::string& path, const std::string& key) {
  bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!plain) return path + "[" + json_quoted(key) + "]";
  return path.empty() ? key : path + "." + key;
}

std::string element_path(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// What to do instead of a field kcr does not support, where there is something to say.
std::string unsupported_hint(const std::string& path) {
  struct Instead {
    const char* path;
    const char* hint;
  };
  static const Instead kInstead[] = {
      {"process.capabilities", "kcr does not change a workload's capabilities"},
      {"process.rlimits", "kcr sets no rlimits on a workload"},
      {"process.noNewPrivileges", "kcr does not set no_new_privs on a workload"},
      {"process.consoleSize", "kcr runs workloads without a terminal"},
      {"process.user.umask", "kcr does not set a workload's umask"},
      {"linux.uidMappings", "kcr run --uidmap gives a workload a user namespace with its uid map"},
      {"linux.gidMappings", "kcr run --gidmap gives a workload a user namespace with its gid map"},
      {"linux.cgroupsPath", "kcr puts a workload with a memory or pids limit in cgroup /kcr/NAME"},
      {"linux.resources.cpu", "kcr vm start --cpus sets how many vCPUs the VM has"},
      {"hooks", "kcr runs no hooks"},
  };
  for (const auto& i : kInstead) {
    if (path == i.path) return std::string("remove it; ") + i.hint;
  }
  return "remove it: kcr refuses what it cannot honour rather than ignore it";
}

[[noreturn]] void unsupported(const std::string& path) {
  refuse(path + " is not supported by kcr", unsupported_hint(path));
}

[[noreturn]] void missing(const std::string& path, const std::string& hint) {
  refuse(path + " is missing", hint);
}

void expect(bool ok, const std::string& path, const char* type) {
  if (!ok) refuse(path + " must be " + type, kSpecHint);
}

std::string string_at(const Json& v, const std::string& path) {
  expect(v.is_string(), path, "a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos) {
    refuse(path + " holds a NUL character", "a NUL would cut the string short; remove it");
  }
  return s;
}

bool bool_at(const Json& v, const std::string& path) {
  expect(v.is_boolean(), path, "a boolean");
  return v.get<bool>();
}

// A JSON integer in MIN..MAX (a fraction or an exponent is not one).
std::int64_t integer_at(const Json& v, const std::string& path, std::int64_t min,
                        std::int64_t max) {
  expect(v.is_number(), path, "a number");
  bool in_range = false;
  std::int64_t n = 0;
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    in_range = u <= static_cast<std::uint64_t>(max);
    n = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    n = v.get<std::int64_t>();
    in_range = n >= min && n <= max;
  }
  if (!in_range) {
    refuse(path + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
           kSpecHint);
  }
  return n;
}

std::uint32_t id_at(const Json& v, const std::string& path) {
  return static_cast<std::uint32_t>(integer_at(v, path, 0, std::numeric_limits<uint32_t>::max()));
}

// Calls ON(key, value, path) for each member of the object V at PATH, in document order.
template <class On>
void each_member(const Json& v, const std::string& path, On&& on) {
  expect(v.is_object(), path, "an object");
  for (auto it = v.begin(); it != v.end(); ++it)
    on(it.key(), it.value(), member_path(path, it.key()));
}

// Calls ON(value, path) for each element of the array V at PATH.
template <class On>
void each_element(const Json& v, const std::string& path, On&& on) {
  expect(v.is_array(), path, "an array");
  for (std::size_t i = 0; i < v.size(); ++i) on(v[i], element_path(path, i));
}

std::vector<std::string> strings_at(const Json& v, const std::string& path) {
  std::vector<std::string> out;
  each_element(v, path,
               [&](const Json& e, const std::string& p) { out.push_back(string_at(e, p)); });
  return out;
}

void expect_absolute(const std::string& value, const std::string& path, const char* example) {
  if (value.empty() || value[0] != '/') {
    refuse(path + " " + json_quoted(value) + " is not an absolute path",
           std::string("give a path inside the container that starts with /, such as ") + example);
  }
}

// P made absolute (against the working directory) and lexically normal, without a trailing /.
std::string absolute_normal(const std::filesystem::path& p) {
  std::error_code ec;
  std::filesystem::path a = std::filesystem::absolute(p.empty() ? "." : p, ec);
  if (ec) throw Error("cannot make " + p.string() + " absolute: " + ec.message());
  std::string s = a.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// PATH as the bundle means it: an absolute one as it is, a relative one from the bundle DIR.
std::string in_bundle(const std::string& dir, const std::string& path) {
  return absolute_normal(std::filesystem::path(dir) / path);
}

Json parse_json(std::string_view text) {
  std::vector<std::size_t> members;  // of each object being parsed, innermost last
  Json::parser_callback_t bounded = [&](int, Json::parse_event_t event, Json&) {
    using E = Json::parse_event_t;
    if (event == E::object_start) {
      members.push_back(0);
    } else if (event == E::object_end) {
      if (!members.empty()) members.pop_back();
    } else if (event == E::key && !members.empty() && ++members.back() > kMaxMembers) {
      refuse("an object has more than " + std::to_string(kMaxMembers) + " members",
             "an OCI config.json has a few dozen fields; is this a bundle's config.json?");
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), bounded);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ...": the part after
    // the tag, cut short (it ends with the token last read, which can be long).
    std::string why = e.what();
    if (auto tag = why.find("] "); tag != std::string::npos) why.erase(0, tag + 2);
    if (why.size() > 200) why = why.substr(0, 200) + "...";
    refuse("not valid JSON at byte " + std::to_string(e.byte) + ": " + why, "fix the JSON syntax");
  } catch (const Json::exception& e) {
    refuse(std::string("not valid JSON: ") + e.what(), "fix the JSON syntax");
  }
}

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  return std::any_of(words.begin(), words.end(), [&](const char* w) { return s == w; });
}

// An OCI version kcr reads: SemVer with major version 1 ("1.0.2-dev", "1.2.0").
bool is_version_1(const std::string& v) {
  return v.size() > 2 && v.compare(0, 2, "1.") == 0 && v[2] >= '0' && v[2] <= '9';
}

void parse_root(const Json& v, const std::string& path, OciBundle& b) {
  bool has_path = false;
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "path") {
      std::string root = string_at(value, p);
      if (root.empty())
        refuse(p + " is empty", "give the root file system's directory, such as rootfs");
      b.root_path = in_bundle(b.dir, root);
      has_path = true;
    } else if (key == "readonly") {
      b.root_readonly = bool_at(value, p);
    } else {
      unsupported(p);
    }
  });
  if (!has_path) missing(path + ".path", "give the root file system's directory, such as rootfs");
}

void parse_user(const Json& v, const std::string& path, OciBundle& b) {
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "uid") {
      b.uid = id_at(value, p);
    } else if (key == "gid") {
      b.gid = id_at(value, p);
    } else if (key == "additionalGids") {
      b.additional_gids.clear();
      each_element(value, p, [&](const Json& e, const std::string& ep) {
        b.additional_gids.push_back(id_at(e, ep));
      });
    } else {
      unsupported(p);
    }
  });
}

void parse_process(const Json& v, const std::string& path, OciBundle& b) {
  bool has_args = false;
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "terminal") {
      if (bool_at(value, p)) {
        refuse(p + " is true, but kcr runs workloads without a terminal",
               "set it to false; a workload's output goes to a log that kcr logs reads");
      }
    } else if (key == "user") {
      parse_user(value, p, b);
    } else if (key == "args") {
      b.args = strings_at(value, p);
      if (b.args.empty()) refuse(p + " is empty", "give the command to run, such as [\"sh\"]");
      if (b.args[0].empty()) refuse(p + "[0] is empty", "give the program to run, such as sh");
      has_args = true;
    } else if (key == "env") {
      b.env = strings_at(value, p);
      for (std::size_t i = 0; i < b.env.size(); ++i) {
        auto eq = b.env[i].find('=');
        if (eq == std::string::npos || eq == 0) {
          refuse(element_path(p, i) + " " + json_quoted(b.env[i]) + " is not KEY=VALUE",
                 "write each variable as KEY=VALUE, such as PATH=/usr/bin:/bin");
        }
      }
    } else if (key == "cwd") {
      b.cwd = string_at(value, p);
      expect_absolute(b.cwd, p, "/ or /srv");
    } else {
      unsupported(p);
    }
  });
  if (!has_args) missing(path + ".args", "give the command to run, such as [\"sh\"]");
}

OciMount parse_mount(const Json& v, const std::string& path, const std::string& dir) {
  OciMount m;
  bool has_destination = false, has_type = false;
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "destination") {
      m.destination = string_at(value, p);
      expect_absolute(m.destination, p, "/data");
      has_destination = true;
    } else if (key == "type") {
      m.type = string_at(value, p);
      has_type = true;
    } else if (key == "source") {
      m.source = string_at(value, p);
    } else if (key == "options") {
      m.options = strings_at(value, p);
    } else {
      unsupported(p);
    }
  });
  if (!has_destination) missing(path + ".destination", "give the path inside the container");
  std::string name = "mount " + json_quoted(m.destination);
  bool bind = m.type == "bind" || std::any_of(m.options.begin(), m.options.end(),
                                              [](auto& o) { return o == "bind" || o == "rbind"; });
  if (bind) {
    if (m.source.empty()) {
      refuse(name + " binds no source",
             "give the directory or file to bind as source; a relative one is taken from the "
             "bundle directory");
    }
    m.type = "bind";
    m.source = in_bundle(dir, m.source);
  } else if (!has_type) {
    refuse(name + " has no type", kMountTypesHint);
  } else if (!is_one_of(m.type, {"tmpfs", "proc", "sysfs", "devpts", "mqueue"})) {
    refuse(name + " has type " + json_quoted(m.type) + ", which kcr does not support",
           kMountTypesHint);
  }
  return m;
}

void parse_namespaces(const Json& v, const std::string& path, OciBundle& b) {
  each_element(v, path, [&](const Json& e, const std::string& ep) {
    std::string type;
    bool has_type = false;
    each_member(e, ep, [&](const std::string& key, const Json& value, const std::string& p) {
      if (key == "type") {
        type = string_at(value, p);
        has_type = true;
      } else if (key == "path") {
        refuse(p + " is not supported by kcr: it joins an existing namespace",
               "remove it; kcr makes each namespace new, in the guest, where the host's "
               "namespaces are out of reach");
      } else {
        unsupported(p);
      }
    });
    if (!has_type) missing(ep + ".type", kNamespacesHint);
    if (!is_one_of(type, {"pid", "mount", "ipc", "uts", "network", "cgroup", "user"})) {
      refuse(ep + ".type " + json_quoted(type) + " is not a namespace kcr makes", kNamespacesHint);
    }
    if (std::find(b.namespaces.begin(), b.namespaces.end(), type) != b.namespaces.end()) {
      refuse(ep + ".type " + json_quoted(type) + " is listed twice", "list each namespace once");
    }
    b.namespaces.push_back(type);
  });
}

// The limit member of linux.resources.memory or .pids, the only member kcr takes of either.
template <class OnLimit>
void parse_limit_object(const Json& v, const std::string& path, OnLimit&& on_limit) {
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key != "limit") unsupported(p);
    on_limit(integer_at(value, p, std::numeric_limits<std::int64_t>::min(),
                        std::numeric_limits<std::int64_t>::max()),
             p);
  });
}

void parse_resources(const Json& v, const std::string& path, OciBundle& b) {
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "memory") {
      parse_limit_object(value, p, [&](std::int64_t n, const std::string& lp) {
        // At least 4 MiB, as kcr run --memory (parse_memory_limit) takes; -1: no limit.
        constexpr std::int64_t kMin = std::int64_t{4} << 20;
        if (n != -1 && n < kMin) {
          refuse(lp + " " + std::to_string(n) + " is below 4194304 bytes (4 MiB)",
                 "give a limit in bytes of at least 4 MiB, as kcr run --memory takes, or -1 "
                 "for none");
        }
        b.memory_limit = n == -1 ? 0 : static_cast<std::uint64_t>(n);
      });
    } else if (key == "pids") {
      parse_limit_object(value, p, [&](std::int64_t n, const std::string& lp) {
        // pids.max takes up to PID_MAX_LIMIT, as kcr run --pids-limit; -1: no limit.
        constexpr std::int64_t kMax = 4194304;
        if (n != -1 && (n < 1 || n > kMax)) {
          refuse(lp + " " + std::to_string(n) + " is not from 1 to 4194304",
                 "give the most processes and threads, as kcr run --pids-limit takes, or -1 for "
                 "none");
        }
        b.pids_limit = n == -1 ? 0 : n;
      });
    } else {
      unsupported(p);
    }
  });
}

void parse_linux(const Json& v, const std::string& path, OciBundle& b) {
  each_member(v, path, [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "namespaces") {
      b.namespaces.clear();
      parse_namespaces(value, p, b);
    } else if (key == "resources") {
      parse_resources(value, p, b);
    } else {
      unsupported(p);
    }
  });
}

}  // namespace

OciBundle parse_oci_config(std::string_view text, const std::string& dir) {
  Json doc = parse_json(text);
  if (!doc.is_object()) refuse("the top level must be an object", kSpecHint);
  OciBundle b;
  b.dir = absolute_normal(dir);
  bool has_version = false, has_process = false, has_root = false;
  each_member(doc, "", [&](const std::string& key, const Json& value, const std::string& p) {
    if (key == "ociVersion") {
      std::string version = string_at(value, p);
      if (!is_version_1(version)) {
        refuse(p + " " + json_quoted(version) + " is not a 1.x version of the OCI runtime spec",
               "kcr reads bundles of OCI runtime spec 1.x, as runc spec writes them");
      }
      has_version = true;
    } else if (key == "process") {
      parse_process(value, p, b);
      has_process = true;
    } else if (key == "root") {
      parse_root(value, p, b);
      has_root = true;
    } else if (key == "hostname") {
      b.hostname = string_at(value, p);
      if (b.hostname.size() > 64) refuse(p + " is longer than 64 bytes", "give a shorter name");
    } else if (key == "mounts") {
      b.mounts.clear();
      each_element(value, p, [&](const Json& e, const std::string& ep) {
        b.mounts.push_back(parse_mount(e, ep, b.dir));
      });
    } else if (key == "linux") {
      parse_linux(value, p, b);
    } else if (key == "annotations") {
      // Opaque by the spec: checked for its form (strings), not read.
      each_member(value, p, [](const std::string&, const Json& a, const std::string& ap) {
        expect(a.is_string(), ap, "a string");
      });
    } else {
      unsupported(p);
    }
  });
  if (!has_version) missing("ociVersion", "say which spec it follows, such as \"1.0.2\"");
  if (!has_process) missing("process", "give the command to run as process.args");
  if (!has_root) missing("root", "give the root file system's directory as root.path");
  if (!b.hostname.empty() &&
      std::find(b.namespaces.begin(), b.namespaces.end(), "uts") == b.namespaces.end()) {
    refuse("hostname is set, but linux.namespaces has no uts namespace to set it in",
           "add {\"type\": \"uts\"} to linux.namespaces, or remove hostname");
  }
  return b;
}

OciBundle read_oci_bundle(const std::string& dir) {
  const char* what_a_bundle_is =
      "a bundle is a directory holding config.json and the root file system it names (runc "
      "spec writes a config.json)";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) throw_errno("cannot read bundle " + dir);
    throw Error("bundle " + dir + " does not exist", what_a_bundle_is, ExitCode::usage);
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error("bundle " + dir + " is not a directory", what_a_bundle_is, ExitCode::usage);
  }
  std::string path = (std::filesystem::path(dir) / "config.json").string();
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) throw_errno("cannot read " + path);
    throw Error("bundle " + dir + " has no config.json", what_a_bundle_is, ExitCode::usage);
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(path + " is not a regular file", what_a_bundle_is, ExitCode::usage);
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxOciConfigBytes) {
    throw Error(
        path + " is " + std::to_string(st.st_size) + " bytes, more than the 1 MiB kcr reads",
        "an OCI config.json is a few KiB; is this a bundle's config.json?", ExitCode::usage);
  }
  // The same bound again: a file that grew since the stat is refused, not read whole.
  OciBundle b = parse_oci_config(read_file(path, kMaxOciConfigBytes), dir);
  if (::stat(b.root_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error("bundle " + dir + ": its root file system " + json_quoted(b.root_path) +
                    " (root.path) is not a directory",
                "make the root file system there, such as rootfs/ beside config.json, or fix "
                "root.path",
                ExitCode::usage);
  }
  return b;
}

}  // namespace kcr::core
