#include "vm/engine/vms.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "images/image.hpp"

namespace kcr::engine {

std::unique_ptr<vm::VmSession> LocalVms::open(const std::string& name) {
  return std::make_unique<vm::VmSession>(m_cfg, name);
}

vm::VmStartOptions start_options(const core::Config& cfg, const StartSpec& spec) {
  vm::VmStartOptions o;
  o.name = spec.name;
  o.memory_mib = spec.memory_mib ? spec.memory_mib : cfg.memory_mib;
  o.cpus = spec.cpus ? spec.cpus : cfg.cpus;
  o.accel = spec.accel.empty() ? cfg.accel : spec.accel;
  o.backend = spec.backend.empty() ? cfg.backend : spec.backend;
  o.connect = spec.connect.empty() ? cfg.connect : spec.connect;
  images::ImageInfo image = images::find_image(cfg, spec.image.empty() ? cfg.image : spec.image);
  o.image = image.name;
  o.image_hash = image.content_hash;
  o.kernel = image.kernel;
  o.initrd = image.initrd;
  o.kernel_release = image.kernel_release;
  return o;
}

vm::VmInfo LocalVms::start(const StartSpec& spec) {
  return vm::start_vm(m_cfg, start_options(m_cfg, spec), nullptr, m_progress);
}

void LocalVms::stop(const std::string& name) {
  vm::stop_vm(m_cfg, name);
}

std::vector<std::string> LocalVms::names() {
  std::vector<std::string> out;
  for (const auto& v : vm::list_vms(m_cfg)) out.push_back(v.name);
  return out;
}

bool LocalVms::running(const std::string& name) {
  for (const auto& v : vm::list_vms(m_cfg)) {
    if (v.name == name) return v.state == "running";
  }
  return false;
}

OwnedVm::~OwnedVm() {
  if (m_name.empty() || m_keep) return;
  try {
    m_vms.stop(m_name);
  } catch (const Error&) {
  }
}

void OwnedVm::start(const StartSpec& spec) {
  // Owned before it boots: a boot that fails half-way is cleaned up too.
  m_name = spec.name;
  m_vms.start(spec);
}

std::string fresh_vm_name(Vms& vms, const std::string& source) {
  std::string base = source.substr(0, 56) + "-m";
  auto taken = vms.names();
  for (unsigned i = 1;; ++i) {
    std::string name = base + std::to_string(i);
    if (std::find(taken.begin(), taken.end(), name) == taken.end()) return name;
  }
}

}  // namespace kcr::engine
