// Router: the config's routes as rules. For an instance's attributes (DICOM keyword -> text,
// plus "CallingAE"), says which routes match and why, or why not.
// Thread safety: immutable after construction; Match may be called concurrently.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/glob.h"

namespace conduit {

using AttributeMap = std::map<std::string, std::string>;

struct RouteDecision {
  const RouteConfig* route = nullptr;
  bool matched = false;
  // One line per condition: "Modality=CT matches CT" or "Modality=MR does not match CT".
  std::vector<std::string> reasons;
};

class Router {
 public:
  explicit Router(std::vector<RouteConfig> routes);
  // Every route, in config order, with its decision.
  std::vector<RouteDecision> Explain(const AttributeMap& attributes) const;
  // Only the routes that match.
  std::vector<const RouteConfig*> Match(const AttributeMap& attributes) const;
  const std::vector<RouteConfig>& routes() const { return routes_; }

 private:
  std::vector<RouteConfig> routes_;
};

}  // namespace conduit
