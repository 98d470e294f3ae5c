#pragma once

// User namespace id maps as kcr run takes them (podman's --uidmap CONTAINER:HOST:SIZE) and as
// the agent writes them: parsed on the host, validated again by the agent before it writes
// /proc/PID/uid_map.

#include <string>
#include <vector>

#include "agent.pb.h"

namespace kcr::core {

// At most this many lines per map (the kernel takes 340; a workload needs one or two).
inline constexpr int k_max_id_mappings = 5;

// "0:100000:65536" -> {0, 100000, 65536}; throws kcr::Error (usage) naming OPTION and what is
// wrong.
proto::IdMapping parse_id_mapping(const std::string& text, const std::string& option);

// Throws kcr::Error unless MAPS (WHAT: "uid map") is one the kernel takes and kcr can run a
// workload in: 1 to k_max_id_mappings lines, sizes of at least 1, no range past 2^32, no two
// lines overlapping on either side, container id 0 mapped.
void validate_id_maps(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps,
                      const std::string& what);

// The kernel's text for MAPS: "CONTAINER HOST SIZE\n" a line.
std::string id_map_text(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps);

// The host id that container id 0 maps to (validate_id_maps guarantees there is one).
uint32_t host_id_of_root(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps);

}  // namespace kcr::core
