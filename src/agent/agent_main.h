// The cocoon-agent program: boot (as PID 1), then serve the Agent API on the host channel.
#pragma once

namespace cocoon::agent {

// Never returns when running as PID 1 (it powers the VM off instead).
int AgentMain(int argc, char** argv);

}  // namespace cocoon::agent
