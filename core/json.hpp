#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace kcr::core {

// A small JSON value for --json output: build it, then dump() it. Object keys
// keep insertion order so output reads like the human table.
class Json {
 public:
  using Array = std::vector<Json>;
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() : m_value(nullptr) {}
  Json(std::nullptr_t) : m_value(nullptr) {}
  Json(bool b) : m_value(b) {}
  Json(int v) : m_value(static_cast<int64_t>(v)) {}
  Json(unsigned v) : m_value(static_cast<int64_t>(v)) {}
  Json(long v) : m_value(static_cast<int64_t>(v)) {}
  Json(unsigned long v) : m_value(static_cast<int64_t>(v)) {}
  Json(long long v) : m_value(static_cast<int64_t>(v)) {}
  Json(unsigned long long v) : m_value(static_cast<int64_t>(v)) {}
  Json(double v) : m_value(v) {}
  Json(const char* s) : m_value(std::string(s)) {}
  Json(std::string s) : m_value(std::move(s)) {}
  Json(Array a) : m_value(std::move(a)) {}
  Json(Object o) : m_value(std::move(o)) {}

  static Json object() { return Json(Object{}); }
  static Json array() { return Json(Array{}); }

  // Sets KEY on an object (appending, or replacing an existing key).
  Json& set(const std::string& key, Json value);
  // Appends to an array.
  Json& push(Json value);

  // Compact JSON text.
  std::string dump() const;

 private:
  std::variant<std::nullptr_t, bool, int64_t, double, std::string, Array, Object> m_value;
};

// Escapes S as a JSON string literal, quotes included.
std::string json_quote(const std::string& s);

}  // namespace kcr::core
