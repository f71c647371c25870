// The runtime options Any containerd passes (contract section 7.3). cocoon accepts any or none,
// and takes runtimeoptions.v1.Options.config_path as the cocoon config file to use.
#pragma once

#include <string>

namespace cocoon::shim {

// The config_path of a serialized google.protobuf.Any holding runtimeoptions.v1.Options; "" for
// empty input, another type, or bytes that do not parse.
std::string ConfigPathFromOptions(const std::string& any_bytes);

}  // namespace cocoon::shim
