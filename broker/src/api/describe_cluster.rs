//! DescribeCluster (key 60), versions 0–1: this node, as broker and controller.

use super::metadata::CLUSTER_ID;
use super::Broker;
use spate_protocol::kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use spate_protocol::kafka_protocol::messages::BrokerId;
use spate_protocol::kafka_protocol::protocol::StrBytes;

pub(super) fn handle(broker: &Broker) -> DescribeClusterResponse {
    let node = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id))
        .with_host(StrBytes::from_string(broker.advertised.0.clone()))
        .with_port(i32::from(broker.advertised.1));
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_static_str(CLUSTER_ID))
        .with_controller_id(BrokerId(broker.node_id))
        .with_brokers(vec![node])
}
