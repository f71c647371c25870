// A private temporary directory for one test, removed with everything in it afterwards.
#pragma once

#include <stdlib.h>

#include <string>

#include "common/io.h"

namespace cocoon::vmm::testing {

class TestDir {
 public:
  TestDir() {
    char tmpl[] = "/tmp/cocoon-vmm-test.XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TestDir() {
    if (!path_.empty()) (void)RemoveTree(path_);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace cocoon::vmm::testing
