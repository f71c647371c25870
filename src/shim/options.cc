#include "shim/options.h"

#include <google/protobuf/any.pb.h>

#include "proto/containerd_runtimeoptions.pb.h"

namespace cocoon::shim {

std::string ConfigPathFromOptions(const std::string& any_bytes) {
  google::protobuf::Any any;
  if (any_bytes.empty() || !any.ParseFromString(any_bytes)) return "";
  // containerd writes the bare name; accept a type.googleapis.com/ style prefix as well.
  const std::string& url = any.type_url();
  const std::string name = "runtimeoptions.v1.Options";
  if (url.size() < name.size() || url.compare(url.size() - name.size(), name.size(), name) != 0) {
    return "";
  }
  ::runtimeoptions::v1::Options options;
  if (!options.ParseFromString(any.value())) return "";
  return options.config_path();
}

}  // namespace cocoon::shim
