// triplinectl: see tools/ctl/ctl_commands.h.
#include <iostream>

#include "tools/ctl/ctl_commands.h"

int main(int argc, char** argv) {
  return tripline::ctl::RunCtl(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                               std::cerr);
}
