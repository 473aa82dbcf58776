// Added to a copy of sigs.k8s.io/kube-network-policies in the build cache by
// hack/airgap (lib/components.sh, netpol_build); it is not part of the
// upstream module.
//
// Why: the upstream controller sends packets to its userspace policy engine
// with nftables' native queue expression, which needs a kernel built with
// CONFIG_NFT_QUEUE. Our hosts' kernel lacks it but has the xtables NFQUEUE
// target, which nftables runs through nft_compat (as iptables-nft does).
// The verdict is the same: the packet goes to the same queue number, and
// the bypass flag keeps its meaning.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// nfqFlagBypass is NFQ_FLAG_BYPASS of linux/netfilter/xt_NFQUEUE.h.
const nfqFlagBypass = 0x01

// nfqueueTarget returns the NFQUEUE target (revision 3) equivalent of q.
func nfqueueTarget(q *expr.Queue) expr.Any {
	// struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16 flags; }
	info := make([]byte, 6)
	binary.NativeEndian.PutUint16(info[0:], q.Num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	var flags uint16
	if q.Flag&expr.QueueFlagBypass != 0 {
		flags |= nfqFlagBypass
	}
	binary.NativeEndian.PutUint16(info[4:], flags)
	target := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &target}
}
