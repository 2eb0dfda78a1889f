package repo

import (
	"context"
	"fmt"
	"slices"
)

// AddedBytes is the stored size of the blobs that snap references and base does not, each counted once:
// what a backup added to the repository over its parent (base nil: over nothing). Unlike the writer's own
// count, it includes what an earlier, interrupted attempt of the same backup stored and the finished one
// reused. Directories whose listing is unchanged are not walked. A blob base holds at another path (a
// renamed file) counts as added.
func (r *Repository) AddedBytes(ctx context.Context, snap, base *Snapshot) (int64, error) {
	var baseTree []ID
	if base != nil {
		baseTree = base.Root.Tree
	}
	a := &adder{r: r, seen: map[ID]bool{}}
	if err := a.tree(ctx, snap.Root.Tree, baseTree); err != nil {
		return 0, err
	}
	return a.added, nil
}

type adder struct {
	r     *Repository
	seen  map[ID]bool
	added int64
}

func (a *adder) add(id ID) error {
	if a.seen[id] {
		return nil
	}
	a.seen[id] = true
	loc, _, ok := a.r.index.Lookup(id)
	if !ok {
		return fmt.Errorf("blob %s is not in the index", id)
	}
	a.added += int64(loc.Length)
	return nil
}

// tree counts the directory listing tree against the same directory's listing in the base, baseTree.
func (a *adder) tree(ctx context.Context, tree, baseTree []ID) error {
	if slices.Equal(tree, baseTree) {
		return nil
	}
	type prev struct {
		typ     NodeType
		content map[ID]bool
		tree    []ID
	}
	before := map[string]prev{}
	err := a.r.WalkTree(ctx, baseTree, func(n *Node) error {
		p := prev{typ: n.Type, tree: slices.Clone(n.Tree)}
		if n.Type == NodeFile {
			p.content = make(map[ID]bool, len(n.Content))
			for _, id := range n.Content {
				p.content[id] = true
			}
		}
		before[n.Name] = p
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range tree {
		if err := a.add(id); err != nil {
			return err
		}
	}
	type subdir struct{ tree, base []ID }
	var dirs []subdir
	err = a.r.WalkTree(ctx, tree, func(n *Node) error {
		p, had := before[n.Name]
		switch n.Type {
		case NodeFile:
			for _, id := range n.Content {
				if had && p.typ == NodeFile && p.content[id] {
					continue
				}
				if err := a.add(id); err != nil {
					return err
				}
			}
		case NodeDir:
			d := subdir{tree: slices.Clone(n.Tree)}
			if had && p.typ == NodeDir {
				d.base = p.tree
			}
			dirs = append(dirs, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := a.tree(ctx, d.tree, d.base); err != nil {
			return err
		}
	}
	return nil
}
