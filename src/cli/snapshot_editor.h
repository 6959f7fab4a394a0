/* snapshot_editor — `vigil snapshot-editor`, after Firecracker's tool of
 * the same name: `edit-memory rebase` lays a Diff memory file onto its base
 * (the pages the Diff holds replace the base's), `info-vmstate version`
 * prints the vigil that wrote a state file; vigil's own `info-vmstate
 * sections` lists its sections. */
#ifndef VIGIL_CLI_SNAPSHOT_EDITOR_H
#define VIGIL_CLI_SNAPSHOT_EDITOR_H

/* argv[0] is "snapshot-editor". 0, or 1 with one line on stderr. */
int snapshot_editor_main(int argc, char **argv);

#endif
