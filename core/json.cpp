#include "core/json.hpp"

#include <cmath>
#include <cstdio>

namespace kcr::core {

Json& Json::set(const std::string& key, Json value) {
  auto& obj = std::get<Object>(m_value);
  for (auto& [k, v] : obj) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  obj.emplace_back(key, std::move(value));
  return *this;
}

Json& Json::push(Json value) {
  std::get<Array>(m_value).push_back(std::move(value));
  return *this;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string Json::dump() const {
  struct Visitor {
    std::string operator()(std::nullptr_t) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      if (!std::isfinite(v)) return "null";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", v);
      return buf;
    }
    std::string operator()(const std::string& s) const { return json_quote(s); }
    std::string operator()(const Array& a) const {
      std::string out = "[";
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += ",";
        out += a[i].dump();
      }
      return out + "]";
    }
    std::string operator()(const Object& o) const {
      std::string out = "{";
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (i) out += ",";
        out += json_quote(o[i].first) + ":" + o[i].second.dump();
      }
      return out + "}";
    }
  };
  return std::visit(Visitor{}, m_value);
}

}  // namespace kcr::core
