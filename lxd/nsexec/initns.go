package nsexec

// EnvInitUserns is the variable of initns.c's constructor mode, for
// lxd/container, which starts the process that uses it: it names an
// inherited fd of a container's user namespace, which the process joins
// before copying its mount namespace; it talks on fd 3. Importing it also
// links the constructor into every binary that starts containers.
const EnvInitUserns = "_BERTH_INIT_USERNS_FD"
