//! Outbound NAT and the forwarding rules of networks, as Docker's: nftables rules in a table of
//! berth's own, `table ip berth`, written over netlink (NETLINK_NETFILTER) with the message
//! types of `netlink-packet-netfilter` (the rust-netlink family that rtnetlink is of; the
//! nftables crates that build rules for you are GPL or shell out to `nft`).
//!
//! ```text
//! table ip berth {
//!   chain forward { type filter hook forward priority 0; policy accept;
//!     iifname <bridge> oifname <bridge> accept      # every network: within itself
//!     # a network that is not internal: out to anywhere, back in only for its connections
//!     oifname <bridge> ct state established,related accept
//!     oifname <bridge> drop
//!     iifname <bridge> accept
//!     # an internal network: nothing in or out
//!     iifname <bridge> drop
//!     oifname <bridge> drop
//!   }
//!   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr <subnet> oifname != <bridge> masquerade    # not internal
//!   }
//! }
//! ```
//!
//! Containers on one network talk through their bridge (layer 2), which these rules never see;
//! another network's bridge is an `oifname` that drops, so networks stay isolated. The table is
//! written whole, atomically (one batch: add, delete, add again), whenever networks change, so
//! the rules of a removed network go with it.

use std::net::Ipv4Addr;

use netlink_packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook,
    Immediate, InetHookNumber, ListAttribute, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register,
    RuleAttribute, RuleMessage, TableAttribute, TableMessage, Verdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::NetworkRecord;
use crate::error::{Error, Result};

/// berth's table (family `ip`).
pub(crate) const TABLE: &str = "berth";

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
/// `include/uapi/linux/netfilter/nf_tables.h`: the `ct` expression's attributes and keys.
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
/// `NFT_REG_1`, the register the `ct` expression loads into.
const NFT_REG_1: u32 = 1;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)`.
const CT_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
/// `IFNAMSIZ`: nftables compares interface names as zero-padded 16-byte strings.
const IFNAMSIZ: usize = 16;
/// `NFNL_SUBSYS_NFTABLES`, the batch messages' resource ID.
const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// Writes berth's table for `networks` (removes it when there are none).
pub(crate) fn apply(networks: &[NetworkRecord]) -> Result<()> {
    let mut messages = vec![
        // Adding first makes the delete that follows succeed when the table is not there.
        table(NfTablesMessage::NewTable, NLM_F_CREATE),
        table(NfTablesMessage::DeleteTable, 0),
    ];
    if !networks.is_empty() {
        messages.push(table(NfTablesMessage::NewTable, NLM_F_CREATE));
        messages.push(chain("forward", "filter", InetHookNumber::Forward, 0));
        messages.push(chain("postrouting", "nat", InetHookNumber::PostRouting, 100));
        for network in networks {
            let bridge = &network.bridge;
            // Within the network: with br_netfilter loaded, bridged packets pass the forward
            // hook too, in and out the bridge (Docker's inter-container rule).
            let mut forward = vec![vec![
                iface(MetaKey::Iifname, bridge, true),
                iface(MetaKey::Oifname, bridge, true),
                verdict(NF_ACCEPT),
            ]];
            if network.internal {
                forward.push(vec![iface(MetaKey::Iifname, bridge, true), verdict(NF_DROP)]);
                forward.push(vec![iface(MetaKey::Oifname, bridge, true), verdict(NF_DROP)]);
            } else {
                forward.push(vec![iface(MetaKey::Oifname, bridge, true), established(), verdict(NF_ACCEPT)]);
                forward.push(vec![iface(MetaKey::Oifname, bridge, true), verdict(NF_DROP)]);
                forward.push(vec![iface(MetaKey::Iifname, bridge, true), verdict(NF_ACCEPT)]);
                let (address, prefix) = (network.subnet.network(), network.subnet.prefix_len());
                let masquerade =
                    [source_in(address, prefix), iface(MetaKey::Oifname, bridge, false), masq()].concat();
                messages.push(rule("postrouting", masquerade));
            }
            for expressions in forward {
                messages.push(rule("forward", expressions.concat()));
            }
        }
    }
    send_batch(messages)
}

type Expression = ListAttribute<ExpressionAttribute>;

fn message(inner: NfTablesMessage, flags: u16) -> NetlinkMessage<NetfilterMessage> {
    let mut message = NetlinkMessage::from(NetfilterMessage::new(
        NetfilterHeader::new(NetfilterProtoFamily::IPv4, 0, 0),
        inner,
    ));
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    message
}

fn table(kind: fn(TableMessage) -> NfTablesMessage, flags: u16) -> NetlinkMessage<NetfilterMessage> {
    message(kind(TableMessage { attributes: vec![TableAttribute::Name(TABLE.into())] }), flags)
}

fn chain(name: &str, kind: &str, hook: InetHookNumber, priority: i32) -> NetlinkMessage<NetfilterMessage> {
    message(
        NfTablesMessage::NewChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(TABLE.into()),
                ChainAttribute::Name(name.into()),
                ChainAttribute::Hook(vec![Hook::Number(hook.into()), Hook::Priority(priority as u32)]),
                ChainAttribute::Policy(NF_ACCEPT),
                ChainAttribute::Type(kind.into()),
            ],
        }),
        NLM_F_CREATE,
    )
}

fn rule(chain: &str, expressions: Vec<Expression>) -> NetlinkMessage<NetfilterMessage> {
    message(
        NfTablesMessage::NewRule(RuleMessage {
            attributes: vec![
                RuleAttribute::Table(TABLE.into()),
                RuleAttribute::Chain(chain.into()),
                RuleAttribute::Expressions(expressions),
            ],
        }),
        NLM_F_CREATE | netlink_packet_core::NLM_F_APPEND,
    )
}

/// `iifname`/`oifname` (`key`) equal (or not) to `name`.
fn iface(key: MetaKey, name: &str, equal: bool) -> Vec<Expression> {
    let mut padded = name.as_bytes().to_vec();
    padded.resize(IFNAMSIZ, 0);
    vec![
        Expressions::Meta(vec![Meta::Key(key), Meta::DestinationRegister(Register::Reg1)]).into(),
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(if equal { Operator::Equal } else { Operator::NotEqual }),
            Cmp::Data(DataAttribute::Value(padded)),
        ])
        .into(),
    ]
}

/// `ip saddr <address>/<prefix>`.
fn source_in(address: Ipv4Addr, prefix: u8) -> Vec<Expression> {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    vec![
        // The IPv4 header's source address: network header, offset 12, 4 bytes.
        Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(1),
            Payload::Offset(12),
            Payload::Len(4),
        ])
        .into(),
        Expressions::Bitwise(vec![
            Bitwise::SourceRegister(Register::Reg1),
            Bitwise::DestinationRegister(Register::Reg1),
            Bitwise::Length(4),
            Bitwise::Mask(DataAttribute::Value(mask.to_be_bytes().to_vec())),
            Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
        ])
        .into(),
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(address.octets().to_vec())),
        ])
        .into(),
    ]
}

/// `ct state established,related`.
fn established() -> Vec<Expression> {
    vec![
        Expressions::Other {
            expression_type: "ct".into(),
            attributes: vec![
                DefaultNla::new(NFTA_CT_DREG, NFT_REG_1.to_be_bytes().to_vec()),
                DefaultNla::new(NFTA_CT_KEY, NFT_CT_STATE.to_be_bytes().to_vec()),
            ],
        }
        .into(),
        // The state is a bit mask in host byte order.
        Expressions::Bitwise(vec![
            Bitwise::SourceRegister(Register::Reg1),
            Bitwise::DestinationRegister(Register::Reg1),
            Bitwise::Length(4),
            Bitwise::Mask(DataAttribute::Value(CT_ESTABLISHED_RELATED.to_ne_bytes().to_vec())),
            Bitwise::Xor(DataAttribute::Value(vec![0; 4])),
        ])
        .into(),
        Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::NotEqual),
            Cmp::Data(DataAttribute::Value(vec![0; 4])),
        ])
        .into(),
    ]
}

fn masq() -> Vec<Expression> {
    vec![Expressions::Other { expression_type: "masq".into(), attributes: vec![] }.into()]
}

fn verdict(code: u32) -> Vec<Expression> {
    vec![Expressions::Immediate(vec![
        Immediate::DestinationRegister(Register::Verdict),
        Immediate::Data(DataAttribute::Verdict(vec![VerdictAttribute::Code(Verdict::Other(code))])),
    ])
    .into()]
}

/// Sends `messages` as one nftables transaction and waits for each one's acknowledgement: the
/// kernel applies all or none.
fn send_batch(messages: Vec<NetlinkMessage<NetfilterMessage>>) -> Result<()> {
    let failed = |what: &str, e: std::io::Error| Error::Runtime(format!("nftables: {what}: {e}"));
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| failed("opening a netlink socket", e))?;
    socket.bind_auto().map_err(|e| failed("binding a netlink socket", e))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(|e| failed("connecting a netlink socket", e))?;
    let control = |m: ControlMessage| {
        let mut message = NetlinkMessage::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
            m,
        ));
        message.header.flags = NLM_F_REQUEST;
        message
    };
    let expected = messages.len();
    let mut all = vec![control(ControlMessage::BatchBegin)];
    all.extend(messages);
    all.push(control(ControlMessage::BatchEnd));
    let mut buffer = Vec::new();
    for (seq, mut message) in all.into_iter().enumerate() {
        message.header.sequence_number = seq as u32 + 1;
        message.finalize();
        let start = buffer.len();
        buffer.resize(start + message.buffer_len(), 0);
        message.serialize(&mut buffer[start..]);
    }
    socket.send(&buffer, 0).map_err(|e| failed("sending rules", e))?;
    let mut acked = 0;
    let mut receive = vec![0u8; 65536];
    while acked < expected {
        let n = socket.recv(&mut &mut receive[..], 0).map_err(|e| failed("reading the answer", e))?;
        let mut offset = 0;
        while offset < n {
            let reply = NetlinkMessage::<NetfilterMessage>::deserialize(&receive[offset..n])
                .map_err(|e| Error::Runtime(format!("nftables: an unreadable answer: {e}")))?;
            let length = reply.header.length as usize;
            if let NetlinkPayload::Error(e) = &reply.payload {
                match e.code {
                    None => acked += 1,
                    Some(code) => {
                        let error = std::io::Error::from_raw_os_error(-code.get());
                        return Err(Error::Runtime(format!("writing nftables table {TABLE}: {error}")));
                    }
                }
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_interface_names_are_encoded_as_nft_does() {
        // `ip saddr 172.18.0.0/16`: the mask and the address in network byte order.
        let expressions = source_in("172.18.0.0".parse().unwrap(), 16);
        let Expression::Element(bitwise) = &expressions[1] else { panic!("{expressions:?}") };
        assert!(bitwise.iter().any(|a| matches!(a, ExpressionAttribute::Data(Expressions::Bitwise(b))
            if b.contains(&Bitwise::Mask(DataAttribute::Value(vec![255, 255, 0, 0]))))));
        let Expression::Element(cmp) = &expressions[2] else { panic!("{expressions:?}") };
        assert!(cmp.iter().any(|a| matches!(a, ExpressionAttribute::Data(Expressions::Cmp(c))
            if c.contains(&Cmp::Data(DataAttribute::Value(vec![172, 18, 0, 0]))))));
        // A /0 masks nothing (no shift overflow).
        let everything = source_in(Ipv4Addr::UNSPECIFIED, 0);
        let Expression::Element(bitwise) = &everything[1] else { panic!() };
        assert!(bitwise.iter().any(|a| matches!(a, ExpressionAttribute::Data(Expressions::Bitwise(b))
            if b.contains(&Bitwise::Mask(DataAttribute::Value(vec![0; 4]))))));
        // Interface names: zero-padded to IFNAMSIZ.
        let names = iface(MetaKey::Oifname, "br-0123456789ab", false);
        let Expression::Element(cmp) = &names[1] else { panic!() };
        let mut padded = b"br-0123456789ab".to_vec();
        padded.push(0);
        assert!(cmp.iter().any(|a| matches!(a, ExpressionAttribute::Data(Expressions::Cmp(c))
            if c.contains(&Cmp::Data(DataAttribute::Value(padded.clone())))
                && c.contains(&Cmp::Op(Operator::NotEqual)))));
    }
}
