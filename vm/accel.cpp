#include "vm/accel.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::vm {

namespace {

std::string kvm_device() {
  // Tests point this elsewhere to act as a host without KVM.
  const char* env = std::getenv("KCR_KVM_DEVICE");
  return env && *env ? env : "/dev/kvm";
}

}  // namespace

const char* to_string(Accel a) {
  return a == Accel::kvm ? "kvm" : "tcg";
}

bool kvm_device_usable() {
  UniqueFd fd(::open(kvm_device().c_str(), O_RDWR | O_CLOEXEC));
  return static_cast<bool>(fd);
}

Accel choose_accel(const std::string& wanted) {
  if (wanted == "tcg") return Accel::tcg;
  bool usable = kvm_device_usable();
  if (wanted == "kvm") {
    if (!usable) {
      throw Error(
          "KVM was asked for but " + kvm_device() + " cannot be opened",
          "use --accel tcg (software emulation) or give this user access to " + kvm_device(),
          ExitCode::usage);
    }
    return Accel::kvm;
  }
  return usable ? Accel::kvm : Accel::tcg;
}

std::optional<KvmVerdict> KvmVerdicts::find(const std::string& key) const {
  try {
    auto text = core::try_read_file(m_path, 1 << 20);
    if (!text) return std::nullopt;
    YAML::Node root = YAML::Load(*text);
    YAML::Node n = root[key];
    if (!n || !n.IsMap()) return std::nullopt;
    KvmVerdict v;
    v.works = n["works"].as<bool>(false);
    v.reason = n["reason"].as<std::string>("");
    return v;
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

void KvmVerdicts::remember(const std::string& key, const KvmVerdict& v) const {
  try {
    YAML::Node root;
    if (auto text = core::try_read_file(m_path, 1 << 20)) {
      try {
        root = YAML::Load(*text);
      } catch (const YAML::Exception&) {
      }
    }
    if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    YAML::Node n;
    n["works"] = v.works;
    if (!v.reason.empty()) n["reason"] = v.reason;
    root[key] = n;
    YAML::Emitter out;
    out << root;
    core::write_file_atomic(m_path, std::string(out.c_str()) + "\n", 0644);
  } catch (const Error&) {
  } catch (const YAML::Exception&) {
  }
}

std::string host_kernel_release() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.release;
}

}  // namespace kcr::vm
